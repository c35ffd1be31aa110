import type { Client, estypes } from '@elastic/elasticsearch';
import { z } from 'zod';
import { publicMemory, type Memory, type StoredMemory } from './domain/memory';
import type { IndexNames } from './elasticsearch/indices';
import { badInput } from './errors';
import { sha256 } from './ids';
import { openPageToken, sealPageToken } from './page-tokens';
import { filterClauses, type ScopeField } from './search/filters';
import type { SearchFilters } from './search/plan';

/** How many memories containing a text idsWithText reads a page, and at most in all. */
const TEXT_MATCH_PAGE = 500;
const TEXT_MATCH_CANDIDATES = 10_000;

/** The most sessions one listing of sessions pages through: the most recently written. */
export const SESSION_WINDOW = 10_000;

/**
 * A tenant's memories read a page at a time: the memories search's filters match, and the values
 * their scope fields take. Page tokens hand back where a page ended, so paging reaches everything
 * however much there is.
 */
export class MemoryListings {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
  ) {}

  /**
   * The memories the filters match (those of search), newest first, a page at a time: a page token
   * continues after the last memory of the page before (search_after on when it was stored and its
   * id), so paging reaches every memory, however many, and stays in place as new ones arrive.
   */
  async list(tenant: string, filters: SearchFilters, pageSize: number, pageToken?: string): Promise<{ memories: Memory[]; next_page_token: string | null }> {
    const response = await this.es.search<StoredMemory>({
      index: this.indices.memories,
      query: { bool: { filter: filterClauses(tenant, filters) } },
      sort: [{ created_at: { order: 'desc', unmapped_type: 'date' } }, { id: 'asc' }],
      size: pageSize,
      search_after: pageToken === undefined ? undefined : openPosition(pageToken, isMemorySort, listingOf(tenant, 'memories', filters)),
      _source: { excludes: ['embedding', 'stems', 'context', 'context_stems'] },
    });
    const hits = response.hits.hits;
    const last = hits[hits.length - 1];
    return {
      memories: hits.flatMap((hit) => (hit._source ? [publicMemory(hit._source)] : [])),
      next_page_token: hits.length === pageSize && last?.sort ? pageTokenOf(last.sort, listingOf(tenant, 'memories', filters)) : null,
    };
  }

  /**
   * The memories the filters match by position, for listings that page by offset (Crosmos'): by when
   * they were stored, newest or oldest first, up to the first 10,000 (Elasticsearch's result window;
   * list() pages reach every memory).
   */
  async page(tenant: string, filters: SearchFilters, page: { from: number; size: number; order: 'asc' | 'desc' }): Promise<Memory[]> {
    const response = await this.es.search<StoredMemory>({
      index: this.indices.memories,
      query: { bool: { filter: filterClauses(tenant, filters) } },
      sort: [{ created_at: { order: page.order, unmapped_type: 'date' } }, { id: page.order }],
      from: page.from,
      size: page.size,
      _source: { excludes: ['embedding', 'stems', 'context', 'context_stems'] },
    });
    return response.hits.hits.flatMap((hit) => (hit._source ? [publicMemory(hit._source)] : []));
  }

  /**
   * The ids of the memories the filters match whose text is exactly `text`, newest first (supermemory's
   * "exact content match"). A memory's text is analysed only (no keyword to match it whole, and this
   * cluster runs no scripts), so the phrase narrows the candidates in the index and the comparison is
   * done here, over every candidate: at most TEXT_MATCH_CANDIDATES, past which the text is too common
   * to tell its memories apart from the others (a 400: name the memory by its id).
   */
  async idsWithText(tenant: string, filters: SearchFilters, text: string): Promise<string[]> {
    const ids: string[] = [];
    let after: estypes.SortResults | undefined;
    for (let scanned = 0; ; ) {
      const response = await this.es.search<Pick<StoredMemory, 'text'>>({
        index: this.indices.memories,
        query: { bool: { filter: [...filterClauses(tenant, filters), { match_phrase: { text: { query: text, slop: 0 } } }] } },
        sort: [{ created_at: { order: 'desc', unmapped_type: 'date' } }, { id: 'asc' }],
        size: TEXT_MATCH_PAGE,
        search_after: after,
        _source: ['text'],
        track_total_hits: false,
      });
      const hits = response.hits.hits;
      for (const hit of hits) if (hit._id && hit._source?.text === text) ids.push(hit._id);
      scanned += hits.length;
      if (hits.length < TEXT_MATCH_PAGE) return ids;
      if (scanned >= TEXT_MATCH_CANDIDATES) throw badInput(`content: over ${TEXT_MATCH_CANDIDATES} memories contain this text; name the memory by its id instead`);
      after = hits[hits.length - 1]!.sort;
    }
  }

  /**
   * The ids of the memories a job wrote that still name it, in the order of the content they came
   * from, up to `limit` (Synap's ingestion status lists them).
   */
  async idsOfJob(tenant: string, jobId: string, limit: number): Promise<string[]> {
    const response = await this.es.search({
      index: this.indices.memories,
      query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.job_id': jobId } }] } },
      sort: [{ 'provenance.chunk_index': { order: 'asc', unmapped_type: 'long' } }, { id: 'asc' }],
      size: limit,
      _source: false,
      track_total_hits: false,
    });
    return response.hits.hits.flatMap((hit) => (hit._id ? [hit._id] : []));
  }

  /**
   * The values one scope field takes on the memories the filters match — the tenant's users, agents,
   * sessions… — with how many memories and sources each has and when its first and last memory were
   * stored, in value order a page at a time (a composite aggregation: paging reaches every value).
   */
  async scopeValues(tenant: string, field: ScopeField, filters: SearchFilters, pageSize: number, pageToken?: string): Promise<{ values: ScopeValue[]; next_page_token: string | null }> {
    type Bucket = { key: { value: string }; doc_count: number; sources: { value: number }; first: { value_as_string?: string }; last: { value_as_string?: string } };
    const response = await this.es.search<unknown, { values: { buckets: Bucket[]; after_key?: { value: string } } }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: filterClauses(tenant, filters) } },
      aggs: {
        values: {
          composite: { size: pageSize, sources: [{ value: { terms: { field: `scope.${field}` } } }], after: pageToken === undefined ? undefined : { value: openPosition(pageToken, isString, listingOf(tenant, field, filters)) } },
          aggs: {
            // Exact up to 3,000 sources a value; beyond that an estimate within a few per cent.
            sources: { cardinality: { field: 'provenance.source_id', precision_threshold: 3000 } },
            first: { min: { field: 'created_at' } },
            last: { max: { field: 'created_at' } },
          },
        },
      },
    });
    const { buckets, after_key: after } = response.aggregations!.values;
    return {
      values: buckets.map((bucket) => ({
        value: bucket.key.value,
        memory_count: bucket.doc_count,
        source_count: bucket.sources.value,
        first_memory_at: bucket.first.value_as_string ?? null,
        last_memory_at: bucket.last.value_as_string ?? null,
      })),
      next_page_token: buckets.length === pageSize && after ? pageTokenOf(after.value, listingOf(tenant, field, filters)) : null,
    };
  }

  /**
   * The conversation sessions one surface wrote turns to — each a source of the tenant — most recently
   * written first: those of `userId` when named, those written to at or after `since` when named.
   * Ordering by the last write needs a terms aggregation, so a listing reaches the SESSION_WINDOW most
   * recently written; `since` filters the memories themselves, so its cut is exact however many there are.
   * Two reads: which sessions are on the page, then their details.
   */
  async sessions(tenant: string, filters: { surface: string; userId?: string; since?: Date }, page: { limit: number; offset: number }): Promise<{ sessions: SessionSummary[]; total: number }> {
    const filter: estypes.QueryDslQueryContainer[] = [
      ...filterClauses(tenant, { user_id: filters.userId }),
      { term: { 'provenance.surface': filters.surface } },
      { term: { 'provenance.format': 'CONVERSATION' } },
      { exists: { field: 'provenance.turn_ids' } },
    ];
    const latest = await this.es.search<unknown, { sessions: { buckets: { key: string }[] } }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: filters.since === undefined ? filter : [...filter, { range: { created_at: { gte: filters.since.getTime(), format: 'epoch_millis' } } }] } },
      aggs: { sessions: { terms: { field: 'provenance.source_id', size: SESSION_WINDOW, order: [{ last: 'desc' }, { _key: 'asc' }] }, aggs: { last: { max: { field: 'created_at' } } } } },
    });
    const written = latest.aggregations?.sessions.buckets ?? [];
    const ids = written.slice(page.offset, page.offset + page.limit).map((bucket) => bucket.key);
    if (ids.length === 0) return { sessions: [], total: written.length };

    type Stat = { value: number | null };
    type Details = { key: string; first: Stat; last: Stat; first_said: Stat; last_said: Stat; turns: { value: number }; scope: { hits: { hits: { _source?: { scope?: StoredScope } }[] } } };
    const details = await this.es.search<unknown, { page: { buckets: Details[] } }>({
      index: this.indices.memories,
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
    const byId = new Map((details.aggregations?.page.buckets ?? []).map((bucket) => [bucket.key, bucket]));
    const when = (stat: Stat) => (stat.value === null ? null : new Date(stat.value).toISOString());
    const sessions = ids.flatMap((id) => {
      const bucket = byId.get(id);
      const scope = bucket?.scope.hits.hits[0]?._source?.scope;
      if (!bucket || !scope?.session_id) return [];
      return [{
        source_id: id,
        org_id: scope.org_id ?? null,
        user_id: scope.user_id ?? null,
        session_id: scope.session_id,
        turn_count: bucket.turns.value,
        first_stored_at: when(bucket.first)!,
        last_stored_at: when(bucket.last)!,
        first_said_at: when(bucket.first_said),
        last_said_at: when(bucket.last_said),
      }];
    });
    return { sessions, total: written.length };
  }
}

/** A conversation session as its memories show it: whose, how many turns, when they were stored and said. */
export interface SessionSummary {
  source_id: string;
  org_id: string | null;
  user_id: string | null;
  session_id: string;
  turn_count: number;
  first_stored_at: string;
  last_stored_at: string;
  /** Null when no turn carried a timestamp. */
  first_said_at: string | null;
  last_said_at: string | null;
}

type StoredScope = { org_id?: string; user_id?: string; session_id?: string };

/** One value of a scope field (a user, a session…) with what its memories hold: `POST /v1/scopes/list`. */
export const ScopeValue = z.object({
  value: z.string(),
  memory_count: z.number().int(),
  source_count: z.number().int(),
  first_memory_at: z.string().nullable(),
  last_memory_at: z.string().nullable(),
});
export type ScopeValue = z.infer<typeof ScopeValue>;

/** Which listing a page token continues: the tenant's, of what (memories or a scope field), under which filters. */
const listingOf = (tenant: string, of: string, filters: SearchFilters) => sha256('memory-page-token', tenant, of, JSON.stringify(filters));

/** Where a page of a listing ended, as its page token (lib/page-tokens.ts). */
const pageTokenOf = (position: unknown, listing: string) => sealPageToken(Buffer.from(JSON.stringify(position)), listing);

/**
 * The position a page token sealed for this listing holds, if `valid` accepts it: scopeValues()'s is
 * the page's last value, list()'s the sort values of its last memory (epoch milliseconds, id).
 * Anything else is a 400.
 */
function openPosition<T>(token: string, valid: (value: unknown) => value is T, listing: string): T {
  const refusal = 'page_token is not one this listing gave: start again without it';
  try {
    const value = JSON.parse(openPageToken(token, listing, refusal).toString('utf8')) as unknown;
    if (valid(value)) return value;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  throw badInput(refusal);
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isMemorySort = (value: unknown): value is estypes.SortResults =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'string';
