import type { Router } from 'express';
import { z } from 'zod';
import { forgetTurn } from '../../lib/forget-turn';
import type { IngestJobs } from '../../lib/jobs';
import type { MemoryStore } from '../../lib/memories';
import { notFound } from '../../lib/errors';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { tokenUser } from './tex-auth';

/**
 * What Tex's SDK does with a write once it is made, beyond the seed: `jobs.get()` tracks its job and
 * `conversations.forget()` retires one of its turns. Both see what the caller wrote through Tex: with
 * an access token, what its user wrote (as a write defaults to the token's user), within the key's tenant.
 */

/** A turn id is the 64-hex-digit hash a write answered in `turn_ids` (activities/write-active.ts, fragmentHash). */
const TurnId = z.string().regex(/^[0-9a-f]{64}$/, 'not a turn id: send one of the turn_ids a write answered (64 hex digits)');
const JobId = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'not a job id: send the job_id a write answered');

export const TexForgetQuery = z.object({
  /** Why the turn is forgotten; accepted, and not kept (Cairn keeps no audit trail of deletions). */
  reason: z.string().max(1_000).optional(),
});

/** The SDK's ForgetTurnResponse. Cairn's two tiers are memories of one index: the fragment (active) and the rest (durable). */
export const TexForgetTurnResponse = z.object({
  turn_id: z.string(),
  /** True: recall and search no longer find the turn (a delete that fails part-way answers 503 instead; repeat it). */
  forgotten: z.boolean(),
  durable_tier: z.literal('ok'),
  active_tier: z.literal('ok'),
  active_tier_note: z.string().nullable(),
  /** The memories deleted: the turn's fragment, its windows (a long message), and what was extracted from them. */
  items_retired: z.number().int(),
  residue: z.array(z.string()),
  residue_note: z.string(),
  errors: z.array(z.string()),
});

/** The turn's text outlives its memories in one place, which no search or recall reads. */
const RESIDUE_NOTE =
  "The upload of the write that carried the turn keeps its text in Cairn's blob store until the session's source is deleted (DELETE /v1/sources/{id}); no search or recall reads it. Entities the turn alone named in its session are deleted with it.";

export function texTurnRoutes(router: Router, jobs: IngestJobs, memories: MemoryStore): void {
  // The same body as GET /v1/jobs/:id: Tex's SDK returns this answer as a dict and defines no model for it.
  router.get('/ingestion/status/:job_id', requirePermission('read'), async (req, res) => {
    const jobId = parseWith(JobId, req.params.job_id, 'job_id (path)', 'job_id');
    const progress = await jobs.progressOrThrow(principalOf(req).tenant, jobId);
    const user = tokenUser(req);
    // A job another surface started, or another user's under a token, is not this caller's.
    if (progress.surface !== 'tex' || (user !== undefined && progress.scope.user_id !== user)) throw notFound(`job ${jobId}`);
    res.json(progress);
  });

  router.delete('/ingestion/memory/turns/:turn_id', requirePermission('write'), async (req, res) => {
    const turnId = parseWith(TurnId, req.params.turn_id, 'turn_id (path)', 'turn_id');
    parseWith(TexForgetQuery, req.query);
    const user = tokenUser(req);
    const forgotten = await forgetTurn({ memories, jobs }, principalOf(req).tenant, turnId, { surface: 'tex', filters: user === undefined ? {} : { user_id: user } });
    res.json({
      turn_id: turnId,
      forgotten: true,
      durable_tier: 'ok',
      active_tier: 'ok',
      active_tier_note: forgotten.alreadyForgotten
        ? 'forgotten before: nothing of the turn was left'
        : forgotten.hadFragment
          ? null
          : 'the turn had no active fragment (written with write_active: false, or its fragment deleted before)',
      items_retired: forgotten.memoriesDeleted,
      residue: [],
      residue_note: RESIDUE_NOTE,
      errors: [],
    } satisfies z.infer<typeof TexForgetTurnResponse>);
  });
}
