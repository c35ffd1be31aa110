import type { Client, estypes } from '@elastic/elasticsearch';
import type { Episode } from './tex-episodes';

/** The most episodes one listing pages through: a user's most recently written. */
export const EPISODE_WINDOW = 10_000;

type Stat = { value: number | null; value_as_string?: string };
type PageBucket = {
  key: string;
  first: Stat;
  last: Stat;
  first_said: Stat;
  last_said: Stat;
  turns: { value: number };
  scope: { hits: { hits: { _source?: { scope?: { org_id?: string; user_id?: string; session_id?: string } } }[] } };
};

/**
 * The episodes of Tex writes — one per session of an org's user (the session's source) — most recently
 * written first: those of `userId` (a token's user), else of every user of the tenant. Two reads of the
 * memories: which sessions, ordered by their last write (up to EPISODE_WINDOW), then the page's details.
 */
export async function listEpisodes(
  es: Client,
  memories: string,
  tenant: string,
  filters: { userId?: string; since?: string },
  page: { limit: number; offset: number },
): Promise<{ episodes: Episode[]; total: number }> {
  const filter: estypes.QueryDslQueryContainer[] = [
    { term: { tenant } },
    { term: { 'provenance.surface': 'tex' } },
    { term: { 'provenance.format': 'CONVERSATION' } },
    { exists: { field: 'provenance.turn_ids' } },
    ...(filters.userId !== undefined ? [{ term: { 'scope.user_id': filters.userId } }] : []),
  ];
  const sessions = await es.search<unknown, { sessions: estypes.AggregationsStringTermsAggregate }>({
    index: memories,
    size: 0,
    query: { bool: { filter } },
    aggs: { sessions: { terms: { field: 'provenance.source_id', size: EPISODE_WINDOW, order: [{ last: 'desc' }, { _key: 'asc' }] }, aggs: { last: { max: { field: 'created_at' } } } } },
  });
  const since = filters.since ? Date.parse(filters.since) : undefined;
  const buckets = (sessions.aggregations?.sessions.buckets as { key: string; last: Stat }[] | undefined) ?? [];
  const written = since === undefined ? buckets : buckets.filter((bucket) => (bucket.last.value ?? 0) >= since);
  const ids = written.slice(page.offset, page.offset + page.limit).map((bucket) => bucket.key);
  if (ids.length === 0) return { episodes: [], total: written.length };

  const details = await es.search<unknown, { page: estypes.AggregationsStringTermsAggregate }>({
    index: memories,
    size: 0,
    query: { bool: { filter: [...filter, { terms: { 'provenance.source_id': ids } }] } },
    aggs: {
      page: {
        terms: { field: 'provenance.source_id', size: ids.length },
        aggs: {
          first: { min: { field: 'created_at' } },
          last: { max: { field: 'created_at' } },
          first_said: { min: { field: 'provenance.timestamp' } },
          last_said: { max: { field: 'provenance.timestamp' } },
          turns: { cardinality: { field: 'provenance.turn_ids' } },
          scope: { top_hits: { size: 1, _source: ['scope'] } },
        },
      },
    },
  });
  const byId = new Map(((details.aggregations?.page.buckets as PageBucket[] | undefined) ?? []).map((bucket) => [bucket.key, bucket]));
  const when = (stat: Stat) => (stat.value === null ? null : new Date(stat.value).toISOString());
  const episodes = ids.flatMap((id) => {
    const bucket = byId.get(id);
    const scope = bucket?.scope.hits.hits[0]?._source?.scope;
    if (!bucket || !scope?.session_id) return [];
    return [{
      episode_id: scope.session_id,
      org_id: scope.org_id ?? null,
      user_id: scope.user_id ?? null,
      session_id: scope.session_id,
      turn_count: bucket.turns.value,
      created_at: when(bucket.first)!,
      updated_at: when(bucket.last)!,
      first_turn_at: when(bucket.first_said),
      last_turn_at: when(bucket.last_said),
    }];
  });
  return { episodes, total: written.length };
}
