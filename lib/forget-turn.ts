import { isFinalStatus } from './domain/job';
import { CairnError, conflict, notFound } from './errors';
import type { IngestJobs } from './jobs';
import type { MemoryStore } from './memories';
import type { SearchFilters } from './search/plan';

export interface ForgottenTurn {
  /** How many memories of the turn were deleted: its fragment, its windows and what was extracted from them. */
  memoriesDeleted: number;
  /** Whether the turn had an active fragment (`mem_<turn id>`) when it was forgotten. */
  hadFragment: boolean;
  /** Forgotten before: nothing of it was left to delete. */
  alreadyForgotten: boolean;
}

/**
 * Forgets one Tex turn (the hash activities/write-active.ts names it by) in both tiers: every memory
 * whose provenance names it is deleted as `DELETE /v1/memories/:id` deletes one (a tombstone each,
 * and its words taken out of its neighbouring turns' contexts), and its fragment id is kept as a
 * tombstone even when it had none, so the turn sent again is stored in neither tier (the write reads
 * fragment tombstones: activities/write-active.ts, sessionTurns). The turn id hashes the org, user
 * and session (fragmentHash), so the same words from another user are another turn, kept and stored
 * as before; the tombstone names the user whose turn it was, so another user's token learns nothing
 * of it (404, as for a turn never written).
 *
 * Refused (409) while a job that wrote the turn is still queued or running: its enrichment would
 * store the turn's memories again after the answer. Not found: no memory of the tenant (within the
 * filters, through Tex) names the turn and it was never forgotten.
 */
export async function forgetTurn(
  deps: { memories: MemoryStore; jobs: IngestJobs },
  tenant: string,
  turnId: string,
  within: { filters?: SearchFilters; surface?: string },
): Promise<ForgottenTurn> {
  const fragmentId = `mem_${turnId}`;
  const memories = await deps.memories.ofTurn(tenant, turnId, within);
  if (memories.length === 0) {
    const tombstone = await deps.memories.tombstoneOf(tenant, fragmentId);
    // Forgotten before by whoever may see it: within a user (a Tex token's), only that user's turn.
    const user = within.filters?.user_id;
    if (tombstone && (user === undefined || tombstone.user_id === user)) return { memoriesDeleted: 0, hadFragment: false, alreadyForgotten: true };
    throw notFound(`turn ${turnId}`);
  }
  await refuseWhileWriting(deps.jobs, tenant, memories.map((memory) => memory.jobId), (open) =>
    conflict(`turn ${turnId} is still being enriched by job ${open.join(', ')}: forget it once that job has ended (GET /ingestion/status/${open[0]})`),
  );
  const hadFragment = memories.some((memory) => memory.id === fragmentId);
  if (!hadFragment) await deps.memories.tombstone(tenant, fragmentId, memories[0]!.sourceId, memories[0]!.userId);
  const memoriesDeleted = await deleteInTurn(deps.memories, tenant, memories.map((memory) => memory.id));
  return { memoriesDeleted, hadFragment, alreadyForgotten: false };
}

/**
 * Refuses (the error `refusal` makes of the open ones) while any of these jobs is queued or running:
 * its later batches would store again what a delete is about to remove.
 */
export async function refuseWhileWriting(jobs: IngestJobs, tenant: string, jobIds: (string | undefined)[], refusal: (open: string[]) => CairnError): Promise<void> {
  const named = [...new Set(jobIds.filter((jobId): jobId is string => jobId !== undefined))];
  const progress = await Promise.all(named.map((jobId) => jobs.progress(tenant, jobId)));
  const open = named.filter((_, i) => progress[i] && !isFinalStatus(progress[i]!.status));
  if (open.length > 0) throw refusal(open);
}

/**
 * Deletes each memory in turn as `DELETE /v1/memories/:id` does, one deleted meanwhile (a concurrent
 * forget or delete) gone all the same; answers how many were deleted by this call. Any other failure
 * stops it where it is: what follows stays, for the same request sent again to finish.
 */
export async function deleteInTurn(memories: MemoryStore, tenant: string, ids: string[]): Promise<number> {
  let deleted = 0;
  for (const id of ids) {
    try {
      await memories.delete(tenant, id);
      deleted += 1;
    } catch (error) {
      if (!(error instanceof CairnError && error.code === 'not_found')) throw error;
    }
  }
  return deleted;
}
