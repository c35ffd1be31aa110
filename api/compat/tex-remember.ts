import type { Client } from '@elastic/elasticsearch';
import type { Request } from 'express';
import { z } from 'zod';
import { fragmentHash, sessionTurns } from '../../activities/write-active';
import { readableDate } from '../../lib/domain/dates';
import { Metadata } from '../../lib/domain/ingest';
import { readTurnTime, TimeZone, type TurnTime } from '../../lib/domain/turn-times';
import type { IndexNames } from '../../lib/elasticsearch/indices';
import { CairnError } from '../../lib/errors';
import { sourceId as deriveSourceId } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import type { Logger } from '../../lib/logger';
import { turnPositionsKey, type Sequences } from '../../lib/sequences';
import { principalOf } from '../auth';
import { checkActsFor } from './tex-auth';
import { TexScope } from './tex-scope';

/** Metacognition Tex (seed 002): POST /ingestion/memory with active and passive tiers. */
export const TexTurn = z.object({
  role: z.string().min(1).max(50),
  text: z.string().min(1).max(100_000),
  // Kept as written (it is part of the turn's identity), but it must be a date.
  timestamp: z.string().max(64).superRefine(readableDate).optional(),
  /** Notes on the turn (the seed leaves their shape open): text, a list, or any JSON. */
  observations: z
    .unknown()
    .refine((value) => value === undefined || JSON.stringify(value).length <= 100_000, 'at most 100,000 characters of JSON')
    .optional(),
});

/** Observations as lines after the turn's text: `[observation: …]`, one per item of a list. */
export function withObservations(text: string, observations: unknown): string {
  if (observations === undefined || observations === null) return text;
  const items = Array.isArray(observations) ? observations : [observations];
  const lines = items
    .filter((item) => item !== undefined && item !== null && item !== '')
    .map((item) => `[observation: ${typeof item === 'string' ? item : JSON.stringify(item)}]`);
  return lines.length ? `${text}\n${lines.join('\n')}` : text;
}

export const TexIngestRequest = z.object({
  scope: TexScope,
  turns: z.array(TexTurn).min(1).max(1000),
  options: z
    .object({ write_active: z.boolean().default(true), write_passive: z.boolean().default(true) })
    // The seed: "advanced callers can disable one storage tier". Both off would store nothing.
    .refine((options) => options.write_active || options.write_passive, 'at least one of write_active and write_passive must be true')
    .default({ write_active: true, write_passive: true }),
  metadata: Metadata.optional(),
  /** The zone a timestamp without one is read in (natural language too: "yesterday 3pm"); UTC unless named. */
  timezone: TimeZone.optional(),
});
export type TexIngestRequest = z.infer<typeof TexIngestRequest>;

export const TexIngestResponse = z.object({
  job_id: z.string(),
  active_fragment_ids: z.array(z.string()),
  /**
   * Each turn's id, in the order sent (the SDK's RememberResponse.turn_ids, what conversations.forget
   * takes): the hash every memory of the turn names in provenance.turn_ids. Its fragment is
   * `mem_<turn id>`, so where a turn has one the two ids are the same string.
   */
  turn_ids: z.array(z.string()),
  /** Turns of this write not stored because they were forgotten (or their fragment deleted) before. */
  not_stored_forgotten: z.array(z.string()),
  /** How each turn's time was read, in the order sent (the SDK's TurnTime). */
  turn_times: z.array(z.object({
    turn_index: z.number().int(),
    original: z.string().nullable(),
    timestamp: z.string(),
    timestamp_ms: z.number().int(),
    source: z.enum(['explicit', 'relative', 'arrival']),
    uncertain: z.boolean(),
  }) satisfies z.ZodType<TurnTime>),
  passive_job_id: z.string().nullable(),
  usage: z.object({ tokens_in: z.number(), tokens_out: z.number() }),
});

/** What a Tex write needs: the jobs, and Elasticsearch for what its session has stored. */
export interface TexWriteDeps {
  jobs: IngestJobs;
  es: Client;
  indices: Pick<IndexNames, 'memories' | 'tombstones'>;
  sequences: Sequences;
  log: Logger;
}

/**
 * Tex's write (`conversations.remember`, and `episodes.store` through it): each turn stored as its
 * active fragment at once, then enriched, in its session of the scope's org and user.
 */
export async function rememberTurns(
  { jobs, es, indices, sequences, log }: TexWriteDeps,
  req: Request,
  body: TexIngestRequest,
  /** What the request calls its turns, for the errors that name one: an episode's are `messages`. */
  sentAs: 'turns' | 'messages' = 'turns',
): Promise<z.infer<typeof TexIngestResponse>> {
  const { tenant } = principalOf(req);
  checkActsFor(req, body.scope.user_id, 'scope.user_id');
  // A write made with an access token (tex-auth.ts) defaults to the token's user and session, as Tex's do.
  if (req.texClaims) body.scope = { ...body.scope, user_id: body.scope.user_id ?? req.texClaims.user_id, session_id: body.scope.session_id ?? req.texClaims.session_id };
  const sessionId = body.scope.session_id ?? 'default-session';
  const scope = { orgId: body.scope.org_id, userId: body.scope.user_id, sessionId };
  const arrival = new Date();
  const times = body.turns.map((turn, i) => readTurnTime(turn.timestamp, [sentAs, i], body.timezone, arrival));
  const turns = body.turns.map((turn, i) => ({
    role: turn.role,
    // A turn's observations are kept with what was said (and searchable with it); its identity
    // stays role + text + timestamp, as the seed defines it.
    content: withObservations(turn.text, turn.observations),
    // Stored as read (a relative "yesterday 3pm" as the time it meant on arrival); identified as sent.
    timestamp: times[i]!.stored,
    turnId: fragmentHash(tenant, scope, turn.role, turn.text, turn.timestamp),
  }));
  const sourceKey = `tex-session:${body.scope.org_id}:${body.scope.user_id ?? ''}:${sessionId}`;
  // Turns not stored yet are numbered on from the session's last: a session's writes are one
  // conversation, whose neighbouring turns search relates by position.
  const sourceId = deriveSourceId(tenant, sourceKey);
  const { stored, fragments, forgotten, next } = await sessionTurns(es, indices, tenant, sourceId, turns.map((turn) => turn.turnId));
  const perTurn = {
    turn_ids: turns.map((turn) => turn.turnId),
    not_stored_forgotten: [...new Set(turns.filter((turn) => forgotten.has(turn.turnId)).map((turn) => turn.turnId))],
    turn_times: times.map(({ time }) => time),
  };
  // "Stable id for this write": the same turns under the same scope are the same job.
  const jobId = jobs.derivedJobId(tenant, 'tex-write', body.scope.org_id, body.scope.user_id ?? '', sessionId, ...turns.map((turn) => turn.turnId));
  // "Re-sending the same turn is a no-op": a write whose every turn has its active fragment already
  // answers at once. Starting it would join the run while it is open, but once that run has ended
  // it would start another under the same job id, which found nothing new and wrote the job's
  // summary over the first run's (memories_created 0, every stage skipped).
  if (body.options.write_active && turns.every((turn) => fragments.has(turn.turnId))) {
    // A forgotten turn's fragment is a tombstone: not stored, so not among the fragments written.
    const written = turns.filter((turn) => !forgotten.has(turn.turnId)).map((turn) => turn.turnId);
    return { job_id: jobId, active_fragment_ids: written, ...perTurn, passive_job_id: null, usage: { tokens_in: 0, tokens_out: 0 } };
  }
  // Claimed from the session's counter, shared by every API process: a write racing another of the
  // same session (through this process or another) gets the positions after the other's, which the
  // memories may not show yet (a passive write indexes them later). What the memories show is the
  // floor, for sessions numbered before they had a counter.
  const reserved = turns.filter((turn) => !stored.has(turn.turnId)).length;
  const positionsKey = turnPositionsKey(sourceId);
  let position = reserved > 0 ? await sequences.claim(tenant, positionsKey, next, reserved) : next;
  // Handed back when this write surely numbers nothing (joining the same write still running, which
  // keeps its own numbers), so that ordinary re-sends leave no gaps. After any other failure the
  // start may still have landed (a deadline passed on the way back): the numbers stay taken, as a
  // gap is harmless and a shared position is not.
  const first = position;
  // A hand-back that fails only leaves a gap in the numbers: logged, never failing the write.
  const handBack = () =>
    sequences.release(tenant, positionsKey, first, reserved).catch((error) => log.warn({ err: error, sourceId }, 'could not hand back the positions of a Tex write'));
  // A turn stored before keeps its position (an active write of a turn only the passive tier
  // stored writes its fragment there); a new one takes the next.
  const numbered = turns.map((turn) => {
    if (!stored.has(turn.turnId)) return { ...turn, index: position++ };
    const at = stored.get(turn.turnId);
    return at === undefined ? turn : { ...turn, index: at };
  });
  const request = {
    tenant,
    kind: 'conversation' as const,
    format: 'CONVERSATION' as const,
    documentType: 'ai-chat-conversation' as const,
    scope,
    metadata: body.metadata,
    surface: 'tex',
    writePassive: body.options.write_passive,
    content: JSON.stringify({ messages: numbered }),
  };

  if (!body.options.write_active) {
    // Passive only: nothing is recallable at once; the whole write is enrichment.
    // "Re-sending the same turn is a no-op": turns already stored, by an earlier write of either
    // tier, are left out; a write with nothing new starts no job.
    const fresh = numbered.filter((turn) => !stored.has(turn.turnId));
    if (fresh.length === 0) return { job_id: jobId, active_fragment_ids: [], ...perTurn, passive_job_id: null, usage: { tokens_in: 0, tokens_out: 0 } };
    // A re-send while the same write is still running joins it (Temporal refuses a second run).
    await jobs.start({ ...request, content: JSON.stringify({ messages: fresh }) }, { jobId, sourceKey }).catch(async (error) => {
      if (!(error instanceof CairnError && error.code === 'conflict')) throw error;
      await handBack();
    });
    return { job_id: jobId, active_fragment_ids: [], ...perTurn, passive_job_id: jobId, usage: { tokens_in: 0, tokens_out: 0 } };
  }
  const job = await jobs.startActiveWrite(request, { jobId, sourceKey });
  if (job.active.newTurns === 0) await handBack();
  const passive = body.options.write_passive && job.active.newTurns > 0;
  return {
    job_id: job.jobId,
    active_fragment_ids: job.active.fragmentIds,
    ...perTurn,
    passive_job_id: passive ? job.jobId : null,
    usage: { tokens_in: job.active.tokensIn, tokens_out: 0 },
  };
}
