import { CairnError, upstreamFailure } from './errors';
import type { MemoryStore } from './memories';
import { searchMemories, type SearchDeps, type SearchResult } from './search/execute';
import { planFor } from './search/plan';

/**
 * How similar (cosine, 0..1) a memory must be to a description to match it. With the local model
 * (all-MiniLM-L6-v2) a memory about what is described scores about 0.35–0.85 and an unrelated one of
 * the same user below 0.25; OpenAI's text-embedding-3-small spreads about the same way.
 */
export const FORGET_SIMILARITY = 0.3;
/** The most memories one description matches; more may match (`mayBeIncomplete`): call again. */
export const FORGET_LIMIT = 20;

export interface ForgetMatches {
  /** One per thing said (search's distinct answers), most similar first. */
  matches: SearchResult[];
  /** The last memory looked at still matched: more may. */
  mayBeIncomplete: boolean;
}

/**
 * The memories of exactly one user (and customer, when given) that a description, in the user's
 * words, is about: Cairn's hybrid search for it within that scope, kept where the memory's cosine
 * similarity to the description reaches FORGET_SIMILARITY. Memories the customer holds for no one
 * user are not the user's and never match. Without the embedding model (down, or a model change
 * awaiting its reindex) similarity cannot be told: an upstream failure, with nothing matched.
 */
export async function matchingMemories(search: SearchDeps, tenant: string, description: string, scope: { userId: string; customerId?: string }): Promise<ForgetMatches> {
  const outcome = await searchMemories(search, {
    tenant,
    query: description,
    plan: planFor('hybrid', FORGET_LIMIT),
    filters: { user_id: scope.userId, customer_id: scope.customerId },
    similarity: true,
  });
  if (outcome.warnings.length > 0 || outcome.results.some((result) => result.similarity === undefined)) {
    throw upstreamFailure(`memories cannot be matched to a description now, and none was deleted: ${outcome.warnings.join('; ') || 'no similarity to compare'}`);
  }
  const theirs = outcome.results.filter((result) => result.scope.user_id === scope.userId);
  const matches = theirs.filter((result) => result.similarity! >= FORGET_SIMILARITY);
  // The search's last answer still matched: what it did not reach may match too.
  const last = outcome.results[outcome.results.length - 1];
  return { matches, mayBeIncomplete: outcome.results.length === FORGET_LIMIT && last !== undefined && last.similarity! >= FORGET_SIMILARITY };
}

/**
 * Deletes the matched memories with every copy of what they say (MemoryStore.withCopies), each as
 * `DELETE /v1/memories/:id` deletes one; a memory already gone counts as deleted. Those whose delete
 * failed are named, not thrown: the others stay deleted, and the call may be repeated.
 */
export async function deleteMatches(memories: MemoryStore, tenant: string, matches: SearchResult[]): Promise<{ deletedIds: string[]; failedIds: string[] }> {
  const ids = await memories.withCopies(tenant, matches);
  const deletedIds: string[] = [];
  const failedIds: string[] = [];
  for (const id of ids) {
    try {
      await memories.delete(tenant, id);
      deletedIds.push(id);
    } catch (error) {
      if (error instanceof CairnError && error.code === 'not_found') deletedIds.push(id);
      else failedIds.push(id);
    }
  }
  return { deletedIds, failedIds };
}
