import { Router } from 'express';
import { z } from 'zod';
import type { BackfillRuns } from '../lib/backfill/runs';
import { BackfillKind, BackfillProgress, BackfillRequest } from '../lib/backfill/request';
import { principalOf, requirePermission } from './auth';
import { parseWith } from './errors';
import { assertMayRun } from './schedules';

export const StartedBackfill = z.object({ id: z.string(), backfill: BackfillKind, status: z.literal('running') });
export const BackfillView = BackfillProgress.extend({ id: z.string() });
export const CancellingBackfill = z.object({ id: z.string(), status: z.literal('cancelling') });

/** On-demand backfills: start one now, then poll its progress (the workflow's query). */
export function backfillRoutes(runs: BackfillRuns): Router {
  const router = Router();

  router.post('/v1/backfills', requirePermission('write'), async (req, res) => {
    const body = parseWith(BackfillRequest, req.body);
    assertMayRun(req, body.backfill);
    const started = await runs.start(principalOf(req).tenant, body);
    res.status(202).json({ id: started.id, backfill: body.backfill, status: 'running' });
  });

  router.get('/v1/backfills/:id', requirePermission('read'), async (req, res) => {
    res.json({ id: req.params.id, ...(await runs.progress(principalOf(req).tenant, String(req.params.id))) });
  });

  // Stops a running backfill between items: what it did stays done, the ingest jobs it started finish.
  router.post('/v1/backfills/:id/cancel', requirePermission('write'), async (req, res) => {
    await runs.cancel(principalOf(req).tenant, String(req.params.id));
    res.status(202).json({ id: req.params.id, status: 'cancelling' });
  });

  return router;
}
