import { Router, type Request } from 'express';
import { z } from 'zod';
import { ScheduleView, type BackfillSchedules } from '../lib/backfill/schedules';
import { ScheduleRequest, type BackfillKind } from '../lib/backfill/request';
import { CairnError } from '../lib/errors';
import { isOperatorKey, principalOf, requirePermission } from './auth';
import { parseWith } from './errors';

export const NoteBody = z.object({ note: z.string().max(500).optional() });
const Note = NoteBody.default({});

export const ScheduleList = z.object({ schedules: z.array(ScheduleView) });
export const TriggeredSchedule = z.object({ id: z.string(), triggered: z.literal(true) });

/**
 * What a backfill asks beyond `write`: a reindex copies every tenant's memories to a new index version
 * and swaps the deployment's aliases — the operator's action (CAIRN_API_KEY), not any tenant's,
 * whatever permissions its key holds; an import also needs `ingest`.
 */
export function assertMayRun(req: Request, kind: BackfillKind | string): void {
  if (kind === 'reindex' && !isOperatorKey(principalOf(req))) {
    throw new CairnError('forbidden', 'a reindex moves every tenant\'s memories: only the operator key (CAIRN_API_KEY) may run or schedule one');
  }
  // An import's items are ingest jobs: starting one is ingesting, whatever else the backfill is.
  if (kind === 'import' && !principalOf(req).permissions.has('ingest')) {
    throw new CairnError('forbidden', 'an import ingests what it fetches or reads: it needs the ingest permission as well as write');
  }
}

/**
 * Backfills on Temporal Schedules, per tenant: create, list, show, pause, unpause, trigger now, delete.
 * Each answer names the schedule by its public id; the Temporal id embeds the caller's tenant.
 */
export function scheduleRoutes(schedules: BackfillSchedules): Router {
  const router = Router();

  router.post('/v1/schedules', requirePermission('write'), async (req, res) => {
    const body = parseWith(ScheduleRequest, req.body);
    assertMayRun(req, body.backfill);
    res.status(201).json(await schedules.create(principalOf(req).tenant, body));
  });

  router.get('/v1/schedules', requirePermission('read'), async (req, res) => {
    res.json({ schedules: await schedules.list(principalOf(req).tenant) });
  });

  router.get('/v1/schedules/:id', requirePermission('read'), async (req, res) => {
    res.json(await schedules.get(principalOf(req).tenant, String(req.params.id)));
  });

  router.post('/v1/schedules/:id/pause', requirePermission('write'), async (req, res) => {
    const { note } = parseWith(Note, req.body);
    res.json(await schedules.pause(principalOf(req).tenant, String(req.params.id), note));
  });

  router.post('/v1/schedules/:id/unpause', requirePermission('write'), async (req, res) => {
    const { note } = parseWith(Note, req.body);
    assertMayRun(req, (await schedules.get(principalOf(req).tenant, String(req.params.id))).backfill);
    res.json(await schedules.unpause(principalOf(req).tenant, String(req.params.id), note));
  });

  router.post('/v1/schedules/:id/trigger', requirePermission('write'), async (req, res) => {
    assertMayRun(req, (await schedules.get(principalOf(req).tenant, String(req.params.id))).backfill);
    await schedules.trigger(principalOf(req).tenant, String(req.params.id));
    res.status(202).json({ id: req.params.id, triggered: true });
  });

  router.delete('/v1/schedules/:id', requirePermission('write'), async (req, res) => {
    await schedules.delete(principalOf(req).tenant, String(req.params.id));
    res.status(204).end();
  });

  return router;
}
