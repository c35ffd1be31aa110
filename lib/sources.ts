import type { Client, estypes } from '@elastic/elasticsearch';
import { scopeToWire } from './domain/scope';
import type { IndexNames } from './elasticsearch/indices';
import { deleteMatching, getDocument, type StoredDocument } from './elasticsearch/client';
import { KEPT_SOURCES } from './entities/entity';
import { conflict, notFound, upstreamFailure } from './errors';
import { SCOPE_FIELDS } from './search/filters';
import { turnPositionsKey } from './sequences';
import type { JobListings } from './job-listing';
import type { JobMemo } from './job-request';
import type { IngestJobs } from './jobs';

/** A source record as stored (lib/elasticsearch/mappings.ts: sourcesMapping), the fields read here. */
interface StoredSource {
  id: string;
  tenant: string;
  kind?: string;
  format?: string;
  document_type?: string;
  document_id?: string;
  document_date?: string | null;
  source_url?: string | null;
  file_name?: string | null;
  title?: string | null;
  categories?: string[] | null;
  mode?: string | null;
  metadata_json?: string | null;
  scope?: Record<string, unknown>;
  accepted_at?: string;
  version_at?: string;
  turn_count?: number;
  turn_jobs?: string[];
  last_job_id?: string;
  job_ids?: string[];
  created_at?: string;
  updated_at?: string;
}

/** What `GET /v1/sources/:id` answers: what was sent and when, without the internal bookkeeping. */
export interface PublicSource {
  id: string;
  kind?: string;
  format?: string;
  document_type?: string;
  document_id?: string;
  document_date?: string;
  source_url?: string;
  file_name?: string;
  title?: string;
  categories?: string[];
  mode?: string;
  metadata?: Record<string, unknown>;
  scope?: Record<string, unknown>;
  /** A conversation's turns stored so far. */
  turn_count?: number;
  /** The newest completed version of a document sent again under its id (or a URL ingested again). */
  version_at?: string;
  last_job_id?: string;
  /** The memories the source has now (edited ones included). */
  memory_count: number;
  created_at?: string;
  updated_at?: string;
}

/** What a listing of sources may be narrowed to. */
export interface SourceFilters {
  kind?: string;
  format?: string;
  document_type?: string;
  document_id?: string;
}

/** What a bulk delete matches sources by: their scope (as their memories carry it), ids or document ids; at least one. */
export interface SourceScopeFilters {
  space_id?: string;
  org_id?: string;
  user_id?: string;
  customer_id?: string;
  agent_id?: string;
  session_id?: string;
  container_tags?: string[];
  source_ids?: string[];
  document_ids?: string[];
}

/** The most sources one bulk delete removes; `remaining` tells the caller to send it again. */
export const BULK = 500;

interface Removed {
  memories_deleted: number;
  /** Entities that only these sources mentioned. */
  entities_deleted: number;
  /** Entities other sources mention too: they stay, no longer naming these. */
  entities_updated: number;
  /** Jobs whose stored content (upload, fetched page, artifacts) was removed. */
  jobs_cleared: number;
}

/** What `POST /v1/sources/delete` removed, and what it left. */
export interface SourcesDeletion extends Removed {
  sources_deleted: number;
  /** Sources left as they are: a job of theirs is still queued or running. */
  refused: { source_id: string; open_job_ids: string[] }[];
  /** Sources the filters still match (the refused ones, and any past BULK): send the request again. */
  remaining: number;
}

/** What `DELETE /v1/sources/:id` removed. */
export interface SourceDeletion extends Removed {
  source_id: string;
}

/** Elasticsearch's result window: the most ids one search hands back. */
const WINDOW = 10_000;

/**
 * Sources — what was sent (a document, a file, a URL, a conversation) — read and deleted with all that
 * was derived from them, within the caller's tenant. Deleting a source removes its memories (edited
 * ones too), its mention from every entity (an entity no other source mentions goes), the content its
 * jobs stored in the blob store, and last its record: a request that fails half-way leaves the record,
 * and the same DELETE again finishes the work. The jobs' summaries stay, as the history of what ran.
 */
export class SourceStore {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
    private readonly jobs: IngestJobs,
    private readonly listings: JobListings,
  ) {}

  async get(tenant: string, id: string): Promise<PublicSource> {
    const stored = await this.read(tenant, id);
    if (!stored) throw notFound(`source ${id}`);
    return publicSource(stored.source, await this.memoryCount(tenant, id));
  }

  /** A page of the tenant's sources, newest first, with each one's memory count (one aggregation for the page). */
  async list(tenant: string, filters: SourceFilters, page: { from: number; size: number }): Promise<{ sources: PublicSource[]; total: number }> {
    const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
    for (const field of ['kind', 'format', 'document_type', 'document_id'] as const) {
      if (filters[field]) filter.push({ term: { [field]: filters[field] } });
    }
    const found = await this.es.search<StoredSource>({
      index: this.indices.sources,
      query: { bool: { filter } },
      // Newest first by when the source was first sent (its record is written later, by its job).
      sort: [{ accepted_at: { order: 'desc', unmapped_type: 'date' } }, { created_at: { order: 'desc', unmapped_type: 'date' } }, { id: 'asc' }],
      from: page.from,
      size: page.size,
      track_total_hits: true,
    });
    const hits = found.hits.hits.flatMap((hit) => (hit._source ? [hit._source] : []));
    const counts = await this.memoryCounts(tenant, hits.map((source) => source.id));
    const total = typeof found.hits.total === 'number' ? found.hits.total : (found.hits.total?.value ?? hits.length);
    return { sources: hits.map((source) => publicSource(source, counts.get(source.id) ?? 0)), total };
  }

  /**
   * Refused (409) while a job of the source is queued or running, as that job would write memories
   * again once the delete had answered: the caller cancels it (POST /v1/jobs/:id/cancel) or waits.
   */
  async delete(tenant: string, id: string): Promise<SourceDeletion> {
    const [stored, open] = await Promise.all([this.read(tenant, id), this.listings.openJobsOf(tenant, (memo) => memo.source_id === id)]);
    const running = open.get(id);
    if (running) {
      throw conflict(`source ${id} has a job still queued or running (${running.slice(0, 3).join(', ')}): cancel it (POST /v1/jobs/{id}/cancel) or wait for it to end, then delete the source`);
    }
    if (!stored) throw notFound(`source ${id}`);
    return { source_id: id, ...(await this.remove(tenant, [stored.source])) };
  }

  /**
   * Every source the filters match — those whose memories match them, and those whose record does
   * (a source none of whose jobs stored a memory) — deleted as delete() deletes one, up to BULK at a
   * time: `remaining` says how many still match (call again). A source with a job still open is left,
   * named in `refused`: a matched one's, and a source a job sent with a matching scope or document id
   * is writing (nothing of it is stored yet to match, and it would be stored after the answer).
   */
  async deleteAll(tenant: string, filters: SourceScopeFilters): Promise<SourcesDeletion> {
    const matching = await this.matchingIds(tenant, filters);
    const matched = new Set(matching);
    const open = await this.listings.openJobsOf(tenant, (memo) => (memo.source_id !== undefined && matched.has(memo.source_id)) || sentWith(memo, filters));
    const batch = matching.filter((id) => !open.has(id)).slice(0, BULK);
    const records = await this.readMany(tenant, batch);
    const deletable = batch.map((id) => records.get(id) ?? ({ id, tenant } as StoredSource));
    const removed = await this.remove(tenant, deletable);
    return {
      sources_deleted: deletable.length,
      ...removed,
      refused: [...open].map(([sourceId, jobIds]) => ({ source_id: sourceId, open_job_ids: jobIds })),
      remaining: new Set([...matching, ...open.keys()]).size - deletable.length,
    };
  }

  /**
   * Deletes what was derived from the sources, their records last: memories, mentions in entities,
   * stored content. (A source without a record, found through its memories, has those alone.)
   */
  private async remove(tenant: string, sources: StoredSource[]): Promise<Removed> {
    if (sources.length === 0) return { memories_deleted: 0, entities_deleted: 0, entities_updated: 0, jobs_cleared: 0 };
    const ids = sources.map((source) => source.id);
    const { jobIds, mentioned } = await this.derivedFrom(tenant, sources);
    const memoriesDeleted = await deleteMatching(this.es, this.indices.memories, this.memoriesOf(tenant, ids), "the sources' memories");
    // deleteMatching leaves a memory changed since it was read (an edit landing now) to its writer.
    if ((await this.es.count({ index: this.indices.memories, query: this.memoriesOf(tenant, ids) })).count > 0) {
      throw conflict(`memories of ${ids.length === 1 ? `source ${ids[0]}` : 'these sources'} changed while being deleted; send the request again`);
    }
    const entities = await this.forgetInEntities(tenant, ids, mentioned);
    await this.jobs.dropContent(tenant, jobIds);
    // With its record goes a Tex session's turn counter: sent again, the session is numbered from 0.
    const response = await this.es.bulk({
      refresh: 'wait_for',
      operations: ids.flatMap((id) => [{ delete: { _index: this.indices.sequences, _id: turnPositionsKey(id) } }, { delete: { _index: this.indices.sources, _id: id } }]),
    });
    const failed = response.items.find((item) => item.delete?.error && item.delete.status !== 404);
    if (failed) throw upstreamFailure(`Elasticsearch could not delete a source record: ${failed.delete!.error!.reason ?? failed.delete!.status}`);
    return { memories_deleted: memoriesDeleted, entities_deleted: entities.deleted, entities_updated: entities.updated, jobs_cleared: jobIds.length };
  }

  private memoriesOf(tenant: string, ids: string[]): estypes.QueryDslQueryContainer {
    return { bool: { filter: [{ term: { tenant } }, { terms: { 'provenance.source_id': ids } }] } };
  }

  /** The ids of the sources the filters match: through their memories' scope, and their records'. */
  private async matchingIds(tenant: string, filters: SourceScopeFilters): Promise<string[]> {
    const clauses = (prefix: string, sourceIdField: string, documentIdField: string): estypes.QueryDslQueryContainer[] => {
      const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
      for (const field of SCOPE_FIELDS) if (filters[field] !== undefined) filter.push({ term: { [`${prefix}${field}`]: filters[field] } });
      if (filters.container_tags?.length) filter.push({ terms: { [`${prefix}container_tags`]: filters.container_tags } });
      if (filters.source_ids?.length) filter.push({ terms: { [sourceIdField]: filters.source_ids } });
      if (filters.document_ids?.length) filter.push({ terms: { [documentIdField]: filters.document_ids } });
      return filter;
    };
    const [viaMemories, viaRecords] = await Promise.all([
      this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
        index: this.indices.memories,
        size: 0,
        query: { bool: { filter: clauses('scope.', 'provenance.source_id', 'provenance.document_id') } },
        aggs: { sources: { terms: { field: 'provenance.source_id', size: WINDOW } } },
      }),
      this.es.search<{ id: string }>({
        index: this.indices.sources,
        size: WINDOW,
        _source: ['id'],
        query: { bool: { filter: clauses('scope.', 'id', 'document_id') } },
      }),
    ]);
    const buckets = viaMemories.aggregations?.sources.buckets;
    return [
      ...new Set([
        ...(Array.isArray(buckets) ? buckets.map((bucket) => String(bucket.key)) : []),
        ...viaRecords.hits.hits.flatMap((hit) => (hit._source?.id ? [hit._source.id] : [])),
      ]),
    ].sort();
  }

  private async readMany(tenant: string, ids: string[]): Promise<Map<string, StoredSource>> {
    if (ids.length === 0) return new Map();
    const { docs } = await this.es.mget<StoredSource>({ index: this.indices.sources, ids });
    return new Map(docs.flatMap((doc) => ('found' in doc && doc.found && doc._source?.tenant === tenant ? [[doc._id, doc._source] as const] : [])));
  }

  private read(tenant: string, id: string): Promise<StoredDocument<StoredSource> | undefined> {
    return getDocument<StoredSource>(this.es, { index: this.indices.sources, id }, tenant);
  }

  private async memoryCount(tenant: string, id: string): Promise<number> {
    return (await this.es.count({ index: this.indices.memories, query: this.memoriesOf(tenant, [id]) })).count;
  }

  private async memoryCounts(tenant: string, ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const response = await this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
      index: this.indices.memories,
      size: 0,
      query: this.memoriesOf(tenant, ids),
      aggs: { sources: { terms: { field: 'provenance.source_id', size: ids.length } } },
    });
    const buckets = response.aggregations?.sources.buckets;
    return new Map(Array.isArray(buckets) ? buckets.map((bucket) => [String(bucket.key), bucket.doc_count]) : []);
  }

  /**
   * What the sources left behind, read before it is deleted: every job that stored content for them
   * — those their records name, those that wrote their memories, and those whose summaries name them
   * (a job that failed before writing any memory) — and the entities their memories name.
   */
  private async derivedFrom(tenant: string, sources: StoredSource[]): Promise<{ jobIds: string[]; mentioned: string[] }> {
    const ids = sources.map((source) => source.id);
    const [memories, summaries] = await Promise.all([
      this.es.search<unknown, { jobs: estypes.AggregationsStringTermsAggregate; entities: estypes.AggregationsStringTermsAggregate }>({
        index: this.indices.memories,
        size: 0,
        query: this.memoriesOf(tenant, ids),
        aggs: { jobs: { terms: { field: 'provenance.job_id', size: WINDOW } }, entities: { terms: { field: 'entities.id', size: WINDOW } } },
      }),
      this.es.search<{ job_id: string }>({
        index: this.indices.jobs,
        size: WINDOW,
        _source: ['job_id'],
        query: { bool: { filter: [{ term: { tenant } }, { terms: { source_id: ids } }] } },
      }),
    ]);
    const keys = (aggregate: estypes.AggregationsStringTermsAggregate | undefined) =>
      Array.isArray(aggregate?.buckets) ? aggregate.buckets.map((bucket) => String(bucket.key)) : [];
    const jobIds = [
      ...new Set([
        ...sources.flatMap((source) => [...(source.job_ids ?? []), ...(source.turn_jobs ?? []), ...(source.last_job_id ? [source.last_job_id] : [])]),
        ...keys(memories.aggregations?.jobs),
        ...summaries.hits.hits.flatMap((hit) => (hit._source?.job_id ? [hit._source.job_id] : [])),
      ]),
    ].filter(Boolean);
    return { jobIds, mentioned: keys(memories.aggregations?.entities) };
  }

  /**
   * Each entity that names one of the sources loses them; one left naming no source is deleted.
   * Conditional on the version read (an entity a job updates meanwhile is read again on the next
   * pass), a page at a time, until none is left to change. An entity names only its latest
   * KEPT_SOURCES sources: one that had more — among those the sources' memories named (`mentioned`),
   * so a source older than the ids kept counts too — is recounted from the memories that still name
   * it (the sources' own are gone by now), so it is kept while older sources' memories name it.
   */
  private async forgetInEntities(tenant: string, ids: string[], mentioned: string[]): Promise<{ deleted: number; updated: number }> {
    const gone = new Set(ids);
    const counts = { deleted: 0, updated: 0 };
    const settled: string[] = [];
    for (let pass = 0; ; pass++) {
      const { hits } = await this.es.search<{ source_ids?: string[]; mention_count?: number }>({
        index: this.indices.entities,
        size: 1000,
        _source: ['source_ids', 'mention_count'],
        seq_no_primary_term: true,
        query: {
          bool: {
            filter: [{ term: { tenant } }],
            should: [{ terms: { source_ids: ids } }, { ids: { values: mentioned } }],
            minimum_should_match: 1,
            must_not: [{ ids: { values: settled } }],
          },
        },
      });
      if (hits.hits.length === 0) return counts;
      // A page of 1,000 a pass, plus room for entities a job changes meanwhile (read again).
      // Changed under every pass (another delete of the same sources, a job writing them): the caller's to send again.
      if (pass >= 20 + Math.ceil(mentioned.length / 1000)) throw conflict('entities of these sources kept changing while being deleted (another request or job is writing them); send the request again');
      const truncated = (hit: (typeof hits.hits)[number]) => (hit._source?.mention_count ?? 0) > (hit._source?.source_ids?.length ?? 0);
      const recounted = await this.sourcesNaming(tenant, hits.hits.filter(truncated).map((hit) => hit._id!));
      const operations = hits.hits.flatMap((hit): estypes.BulkRequest['operations'] & object => {
        const sourceIds = hit._source?.source_ids ?? [];
        let remaining = sourceIds.filter((sourceId) => !gone.has(sourceId));
        // mention_count counts distinct sources, each once, so each source gone is one fewer.
        let mentionCount = (hit._source?.mention_count ?? sourceIds.length) - (sourceIds.length - remaining.length);
        const older = recounted.get(hit._id!);
        if (older) {
          remaining = [...new Set([...older.latest.filter((sourceId) => !remaining.includes(sourceId)).reverse(), ...remaining])].slice(-KEPT_SOURCES);
          mentionCount = older.count;
        } else if (remaining.length === sourceIds.length) {
          // Named by a memory of the sources, but naming none of them and holding all its sources: as it was.
          settled.push(hit._id!);
          return [];
        }
        const version = { _index: hit._index, _id: hit._id!, if_seq_no: hit._seq_no, if_primary_term: hit._primary_term };
        if (remaining.length === 0) return [{ delete: version }];
        return [{ update: version }, { doc: { source_ids: remaining, mention_count: Math.max(remaining.length, mentionCount) } }];
      });
      if (operations.length === 0) continue;
      const response = await this.es.bulk({ refresh: 'wait_for', operations });
      let lost = false;
      for (const item of response.items) {
        const [action, result] = Object.entries(item)[0]!;
        if (result.status === 409 || result.status === 404) {
          lost = true;
          continue;
        }
        if (result.error) throw upstreamFailure(`Elasticsearch could not update an entity of deleted sources: ${result.error.reason ?? result.status}`);
        counts[action === 'delete' ? 'deleted' : 'updated'] += 1;
        settled.push(result._id!);
      }
      // Another writer changed them (another delete of the same sources, a job): the next pass must
      // search what it wrote. Until the next scheduled refresh the search would answer the same
      // versions again, and every pass would lose the same way (concurrent deletes ran out of passes: 503).
      if (lost) await this.es.indices.refresh({ index: this.indices.entities });
    }
  }

  /** For each entity, the sources whose memories name it: the latest KEPT_SOURCES, newest first, and how many in all. */
  private async sourcesNaming(tenant: string, entityIds: string[]): Promise<Map<string, { latest: string[]; count: number }>> {
    if (entityIds.length === 0) return new Map();
    type Bucket = { key: string; sources: { buckets: { key: string }[] }; count: { value: number } };
    const response = await this.es.search<unknown, { entities: { buckets: Bucket[] } }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: [{ term: { tenant } }, { terms: { 'entities.id': entityIds } }] } },
      aggs: {
        entities: {
          terms: { field: 'entities.id', include: entityIds, size: entityIds.length },
          aggs: {
            sources: { terms: { field: 'provenance.source_id', size: KEPT_SOURCES, order: { latest: 'desc' } }, aggs: { latest: { max: { field: 'created_at' } } } },
            // Exact up to the threshold (Elasticsearch's most): beyond it, an estimate within a few per cent.
            count: { cardinality: { field: 'provenance.source_id', precision_threshold: 40_000 } },
          },
        },
      },
    });
    const found = new Map<string, { latest: string[]; count: number }>(entityIds.map((id) => [id, { latest: [], count: 0 }]));
    for (const bucket of response.aggregations?.entities.buckets ?? []) {
      found.set(String(bucket.key), { latest: bucket.sources.buckets.map((source) => String(source.key)), count: bucket.count.value });
    }
    return found;
  }
}

function publicSource(source: StoredSource, memoryCount: number): PublicSource {
  const present = <T>(value: T | null | undefined) => value ?? undefined;
  return {
    id: source.id,
    kind: source.kind,
    format: source.format,
    document_type: source.document_type,
    document_id: source.document_id,
    document_date: present(source.document_date),
    source_url: present(source.source_url),
    file_name: present(source.file_name),
    title: present(source.title),
    categories: present(source.categories),
    mode: present(source.mode),
    metadata: source.metadata_json ? (JSON.parse(source.metadata_json) as Record<string, unknown>) : undefined,
    // The record's scope carries the tenant, which the caller's key already names.
    scope: source.scope ? Object.fromEntries(Object.entries(source.scope).filter(([field, value]) => field !== 'tenant' && value !== null && value !== undefined)) : undefined,
    turn_count: source.turn_count,
    version_at: source.version_at,
    last_job_id: source.last_job_id,
    memory_count: memoryCount,
    created_at: source.created_at,
    updated_at: source.updated_at,
  };
}

/**
 * Whether a job was sent with what the filters name, as its memories and record will carry it: every
 * filter given matches (a container tag: any of them), as matchingIds' clauses do.
 */
function sentWith(memo: Partial<JobMemo>, filters: SourceScopeFilters): boolean {
  const scope = scopeToWire(memo.scope ?? {});
  if (SCOPE_FIELDS.some((field) => filters[field] !== undefined && scope[field] !== filters[field])) return false;
  if (filters.container_tags?.length && !filters.container_tags.some((tag) => scope.container_tags?.includes(tag))) return false;
  if (filters.source_ids?.length && !(memo.source_id !== undefined && filters.source_ids.includes(memo.source_id))) return false;
  if (filters.document_ids?.length && !(memo.document_id !== undefined && filters.document_ids.includes(memo.document_id))) return false;
  return true;
}
