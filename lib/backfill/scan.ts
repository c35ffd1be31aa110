import type { Client, estypes } from '@elastic/elasticsearch';
import type { ScanState, ScanTarget, SortValue } from './request';

/**
 * Walks an index with a point-in-time and search_after. The sort is on the unique `id` keyword, not
 * `_shard_doc`, so when a PIT has expired (a worker was down longer than its keep-alive) a fresh PIT
 * resumes from the same cursor without repeating or skipping a document.
 */
export const PIT_KEEP_ALIVE = '30m';

function scanQuery(target: ScanTarget): estypes.QueryDslQueryContainer {
  return target.tenant ? { bool: { filter: [{ term: { tenant: target.tenant } }] } } : { match_all: {} };
}

export async function openIndexScan(es: Client, target: ScanTarget): Promise<ScanState> {
  const index = target.index!;
  const { id } = await es.openPointInTime({ index, keep_alive: PIT_KEEP_ALIVE });
  const { count } = await es.count({ index, query: scanQuery(target) });
  return { target, pitId: id, total: count, done: count === 0 };
}

export async function nextIndexPage(es: Client, state: ScanState, size: number): Promise<{ ids: string[]; state: ScanState }> {
  let pitId = state.pitId ?? (await es.openPointInTime({ index: state.target.index!, keep_alive: PIT_KEEP_ALIVE })).id;
  const search = (pit: string) =>
    es.search({
      pit: { id: pit, keep_alive: PIT_KEEP_ALIVE },
      size,
      query: scanQuery(state.target),
      sort: [{ id: 'asc' }],
      search_after: state.searchAfter as estypes.SortResults | undefined,
      _source: false,
      track_total_hits: false,
    });
  let response;
  try {
    response = await search(pitId);
  } catch (error) {
    if (!isExpiredPit(error)) throw error;
    pitId = (await es.openPointInTime({ index: state.target.index!, keep_alive: PIT_KEEP_ALIVE })).id;
    response = await search(pitId);
  }
  const hits = response.hits.hits;
  const last = hits[hits.length - 1];
  return {
    ids: hits.map((hit) => hit._id!),
    state: {
      ...state,
      // ES may hand back a new PIT id on every search; the latest one must be used next.
      pitId: response.pit_id ?? pitId,
      searchAfter: (last?.sort as SortValue[] | undefined) ?? state.searchAfter,
      done: hits.length < size,
    },
  };
}

export async function closeIndexScan(es: Client, state: ScanState): Promise<void> {
  if (!state.pitId) return;
  await es.closePointInTime({ id: state.pitId }).catch(() => undefined);
}

function isExpiredPit(error: unknown): boolean {
  const body = (error as { meta?: { body?: unknown } }).meta?.body;
  const text = JSON.stringify(body ?? (error as Error).message ?? '');
  return /search_context_missing|No search context found|point in time/i.test(text);
}
