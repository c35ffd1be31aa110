import type { Client, estypes } from '@elastic/elasticsearch';
import { REQUEST_SCOPE_FIELDS, scopeToWire } from './domain/scope';
import { publicSource, type StoredSource } from './source-records';
import type { PublicSource, Removed, SourceDeletion, SourcesDeletion } from './domain/source';

import type { IndexNames } from './elasticsearch/indices';
import { getDocument, type StoredDocument } from './elasticsearch/client';
import { deleteMatching, writeFound } from './elasticsearch/matching-writes';
import { forgetSourcesInEntities } from './entities/forget-sources';
import { badInput, conflict, notFound, upstreamFailure } from './errors';
import { filterClauses, SCOPE_FIELDS, type ScopeField as ScopeValueField } from './search/filters';
import type { SearchFilters } from './search/plan';
import { turnPositionsKey } from './sequences';
import type { JobListings } from './job-listing';
import { sourceDeletion, sourcesDeletion, type Leases } from './leases';
import type { JobMemo } from './job-request';
import type { IngestJobs } from './jobs';


/** What a listing of sources may be narrowed to. */
export interface SourceFilters {
  kind?: string;
  format?: string;
  document_type?: string;
  document_id?: string;
  /** The space its record's scope names (Crosmos' space_id, Memsolus' workspace_id). */
  space_id?: string;
  /** Sources sent with any of these container tags. */
  container_tags?: string[];
  /** Sources sent for this user (Tex's containers). */
  user_id?: string;
  /** Sources of this file name, or of every file name starting with `file_name_prefix`. */
  file_name?: string;
  file_name_prefix?: string;
  /** Sources whose memories carry this metadata (search's metadata filter). */
  metadata?: SearchFilters['metadata'];
}

/** How a listing of sources is ordered: by when each was first sent (the default, newest first) or last written. */
export interface SourceOrder {
  field: 'created_at' | 'updated_at';
  order: 'asc' | 'desc';
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
  /** A file name, or every file name starting with `file_name_prefix` (supermemory's filepath). */
  file_name?: string;
  file_name_prefix?: string;
  /**
   * Match sources by their records alone, as a listing of them does (supermemory's documents.list and
   * deleteBulk), not also through their memories' scope: a memory edited through the API keeps the
   * tags it had when its document moved to others, and would match the document by its old ones.
   */
  records_only?: boolean;
}

/** What deleting a whole (deleteEvery) removed, over all its rounds. */
export type SourcesErased = Omit<SourcesDeletion, 'refused' | 'remaining'>;

/** The most sources one bulk delete removes; `remaining` tells the caller to send it again. */
export const BULK = 500;

/** Elasticsearch's result window: the most ids one search hands back. */
const WINDOW = 10_000;

/**
 * Sources — what was sent (a document, a file, a URL, a conversation) — read and deleted with all that
 * was derived from them, within the caller's tenant. Deleting a source removes its memories (edited
 * ones too, and the tombstones of those deleted one by one), its mention from every entity (an entity no other source mentions goes), the content its
 * jobs stored in the blob store, and last its record: a request that fails half-way leaves the record,
 * and the same DELETE again finishes the work. The jobs' summaries stay, as the history of what ran.
 */
export class SourceStore {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
    private readonly jobs: IngestJobs,
    private readonly listings: JobListings,
    private readonly leases: Leases,
  ) {}

  async get(tenant: string, id: string): Promise<PublicSource> {
    const stored = await this.read(tenant, id);
    if (!stored) throw notFound(`source ${id}`);
    return publicSource(stored.source, await this.memoryCount(tenant, id));
  }

  /** The source's record as stored (what requestOfRecord reads), if the tenant has it. */
  async record(tenant: string, id: string): Promise<StoredSource | undefined> {
    return (await this.read(tenant, id))?.source;
  }

  /** A page of the tenant's sources, newest first, with each one's memory count (one aggregation for the page). */
  async list(tenant: string, filters: SourceFilters, page: { from: number; size: number }, by: SourceOrder = { field: 'created_at', order: 'desc' }): Promise<{ sources: PublicSource[]; total: number }> {
    const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
    for (const field of ['kind', 'format', 'document_type', 'document_id', 'file_name'] as const) {
      if (filters[field]) filter.push({ term: { [field]: filters[field] } });
    }
    if (filters.space_id) filter.push({ term: { 'scope.space_id': filters.space_id } });
    if (filters.user_id) filter.push({ term: { 'scope.user_id': filters.user_id } });
    if (filters.file_name_prefix) filter.push({ prefix: { file_name: filters.file_name_prefix } });
    if (filters.container_tags?.length) filter.push({ terms: { 'scope.container_tags': filters.container_tags } });
    if (filters.metadata && Object.keys(filters.metadata).length > 0) filter.push({ terms: { id: await this.withMemoryMetadata(tenant, filters.metadata) } });
    const { order } = by;
    const found = await this.es.search<StoredSource>({
      index: this.indices.sources,
      query: { bool: { filter } },
      // By when the source was first sent (its record is written later, by its job), or last written.
      sort: [
        ...(by.field === 'created_at' ? [{ accepted_at: { order, unmapped_type: 'date' } }, { created_at: { order, unmapped_type: 'date' } }] : [{ updated_at: { order, unmapped_type: 'date' } }]),
        { id: 'asc' },
      ] as estypes.Sort,
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
   * The sources whose memories carry the metadata: a source's metadata reaches every memory of it (and
   * a conversation's new metadata its stored memories), where the record keeps the first send's alone.
   * Past WINDOW such sources the filter is too wide to answer exactly: a 400 asking to narrow it.
   */
  private async withMemoryMetadata(tenant: string, metadata: NonNullable<SearchFilters['metadata']>): Promise<string[]> {
    const response = await this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: filterClauses(tenant, { metadata }) } },
      aggs: { sources: { terms: { field: 'provenance.source_id', size: WINDOW } } },
    });
    const aggregate = response.aggregations?.sources;
    if ((aggregate?.sum_other_doc_count ?? 0) > 0) throw badInput(`the metadata filter matches over ${WINDOW} sources: narrow it (by container tag, say)`);
    return Array.isArray(aggregate?.buckets) ? aggregate.buckets.map((bucket) => String(bucket.key)) : [];
  }

  /**
   * Refused (409) while a job of the source is queued or running, as that job would write memories
   * again once the delete had answered: the caller cancels it (POST /v1/jobs/:id/cancel) or waits.
   */
  async delete(tenant: string, id: string): Promise<SourceDeletion> {
    // Held from before the look for open jobs: a job started after it writes once the delete is done.
    return this.leases.holding(tenant, sourceDeletion(id), () => this.deleteUnlessOpen(tenant, id));
  }

  private async deleteUnlessOpen(tenant: string, id: string): Promise<SourceDeletion> {
    const [stored, open] = await Promise.all([this.read(tenant, id), this.listings.openJobsOf(tenant, (memo) => memo.source_id === id)]);
    const running = open.get(id);
    if (running) {
      throw conflict(`source ${id} has a job still queued or running (${running.slice(0, 3).join(', ')}): cancel it (POST /v1/jobs/{id}/cancel) or wait for it to end, then delete the source`);
    }
    await this.refreshJobSummaries();
    // A source none of whose jobs completed (its first failed, or was cancelled) has no record, yet
    // may hold an upload, and memories a cancelled job indexed: deleted all the same.
    if (!stored && !(await this.leftWithoutRecord(tenant, id))) throw notFound(`source ${id}`);
    return { source_id: id, ...(await this.remove(tenant, [stored?.source ?? recordless(tenant, id)])) };
  }

  /** Whether a source without a record has memories or job summaries naming it (refreshed). */
  private async leftWithoutRecord(tenant: string, id: string): Promise<boolean> {
    const [memories, jobs] = await Promise.all([
      this.memoryCount(tenant, id),
      this.es.count({ index: this.indices.jobs, query: { bool: { filter: this.jobsOf(tenant, [id]) } } }),
    ]);
    return memories + jobs.count > 0;
  }

  /**
   * Every source the filters match — those whose memories match them, and those whose record does
   * (a source none of whose jobs stored a memory) — deleted as delete() deletes one, up to BULK at a
   * time: `remaining` says how many still match (call again). A source with a job still open is left,
   * named in `refused`: a matched one's, and a source a job sent with a matching scope or document id
   * is writing (nothing of it is stored yet to match, and it would be stored after the answer).
   */
  async deleteAll(tenant: string, filters: SourceScopeFilters): Promise<SourcesDeletion> {
    return this.leases.holding(tenant, sourcesDeletion(tenant), () => this.deleteAllUnlessOpen(tenant, filters));
  }

  /**
   * Every source the filters match, deleteAll's rounds run until none is left, for a delete that must
   * be whole (a space, a tenant): a conflict (409) when a matched source's job is still open, or when
   * `rounds` rounds (each up to BULK sources) leave some — sent again, it goes on. `what` names the whole.
   */
  async deleteEvery(tenant: string, filters: SourceScopeFilters, what: string, rounds: number): Promise<SourcesErased> {
    const erased: SourcesErased = { sources_deleted: 0, memories_deleted: 0, entities_deleted: 0, entities_updated: 0, jobs_cleared: 0 };
    for (let round = 0; ; round += 1) {
      const { refused, remaining, ...deletion } = await this.deleteAll(tenant, filters);
      for (const count of Object.keys(erased) as (keyof SourcesErased)[]) erased[count] += deletion[count];
      if (refused.length > 0) {
        const open = refused.flatMap((source) => source.open_job_ids);
        throw conflict(`${what} has jobs still queued or running (${open.slice(0, 3).join(', ')}${open.length > 3 ? ', …' : ''}): cancel them (POST /v1/jobs/{id}/cancel) or wait for them to end, then send the delete again`);
      }
      if (remaining === 0) return erased;
      if (round === rounds - 1 || deletion.sources_deleted === 0) throw conflict(`${what}: ${erased.sources_deleted} sources deleted, ${remaining} left: send the delete again`);
    }
  }

  private async deleteAllUnlessOpen(tenant: string, filters: SourceScopeFilters): Promise<SourcesDeletion> {
    const matching = await this.matchingIds(tenant, filters);
    const matched = new Set(matching);
    const open = await this.listings.openJobsOf(tenant, (memo) => (memo.source_id !== undefined && matched.has(memo.source_id)) || sentWith(memo, filters));
    const batch = matching.filter((id) => !open.has(id)).slice(0, BULK);
    const records = await this.readMany(tenant, batch);
    const deletable = batch.map((id) => records.get(id) ?? recordless(tenant, id));
    // Again (matchingIds refreshed before the look for open jobs): a job that ended in between wrote its summary since.
    if (deletable.length > 0) await this.refreshJobSummaries();
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
   * stored content. (A source without a record, found through its memories, has those alone.) The
   * job summaries are refreshed by the caller, after its look for open jobs: the summary of a job that
   * ended before it is written without a refresh, and is searched here.
   */
  private async remove(tenant: string, sources: StoredSource[]): Promise<Removed> {
    if (sources.length === 0) return { memories_deleted: 0, entities_deleted: 0, entities_updated: 0, jobs_cleared: 0 };
    const ids = sources.map((source) => source.id);
    const { jobIds, mentioned, summaries } = await this.derivedFrom(tenant, sources);
    const memoriesDeleted = await deleteMatching(this.es, this.indices.memories, this.memoriesOf(tenant, ids), "the sources' memories");
    // The tombstones of memories deleted one by one go too: the same content sent again is a new source.
    await this.es.indices.refresh({ index: this.indices.tombstones });
    await deleteMatching(this.es, this.indices.tombstones, { bool: { filter: [{ term: { tenant } }, { terms: { source_id: ids } }] } }, "the sources' deleted memories");
    const entities = await forgetSourcesInEntities(this.es, this.indices, tenant, ids, mentioned);
    await this.jobs.dropContent(tenant, jobIds);
    await this.forgetInJobSummaries(summaries);
    // With its record goes a Tex session's turn counter: sent again, the session is numbered from 0.
    const response = await this.es.bulk({
      refresh: 'wait_for',
      operations: ids.flatMap((id) => [{ delete: { _index: this.indices.sequences, _id: turnPositionsKey(id) } }, { delete: { _index: this.indices.sources, _id: id } }]),
    });
    const failed = response.items.find((item) => item.delete?.error && item.delete.status !== 404);
    if (failed) throw upstreamFailure(`Elasticsearch could not delete a source record: ${failed.delete!.error!.reason ?? failed.delete!.status}`);
    return { memories_deleted: memoriesDeleted, entities_deleted: entities.deleted, entities_updated: entities.updated, jobs_cleared: jobIds.length };
  }

  /**
   * The summaries of the sources' jobs stay as the history of what ran, without what named the user or
   * the document (scope, document id, URL), and marked: a deleted source is not found through them again.
   */
  private async forgetInJobSummaries(summaries: JobSummaryHit[]): Promise<void> {
    const deletedAt = new Date().toISOString();
    // One changed meanwhile (409) was forgotten by another delete of the source.
    await writeFound(
      this.es,
      summaries.map((hit) => {
        const { scope: _scope, document_id: _documentId, source_url: _url, ...kept } = hit._source ?? {};
        return { hit, write: { index: { ...kept, scope: {}, source_deleted_at: deletedAt } } };
      }),
      "update a deleted source's job summary",
      false,
    );
  }

  /** Job summaries are written without waiting for a refresh (read by id); searching them waits for one. */
  private async refreshJobSummaries(): Promise<void> {
    await this.es.indices.refresh({ index: this.indices.jobs });
  }

  /** The summaries of the sources' jobs, but for those already forgotten with an earlier delete of them. */
  private jobsOf(tenant: string, ids: string[]): estypes.QueryDslQueryContainer[] {
    return [{ term: { tenant } }, { terms: { source_id: ids } }, { bool: { must_not: { exists: { field: 'source_deleted_at' } } } }];
  }

  private memoriesOf(tenant: string, ids: string[]): estypes.QueryDslQueryContainer {
    return { bool: { filter: [{ term: { tenant } }, { terms: { 'provenance.source_id': ids } }] } };
  }

  /**
   * The ids of the sources the filters match: through their memories' scope, their records', and —
   * for a source none of whose jobs completed, which has no record — its jobs' summaries.
   */
  private async matchingIds(tenant: string, filters: SourceScopeFilters): Promise<string[]> {
    const clauses = (fields: { scope: (field: ScopeValueField) => string; sourceId: string; documentId: string; fileName: string }): estypes.QueryDslQueryContainer[] => {
      const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
      for (const field of SCOPE_FIELDS) if (filters[field] !== undefined) filter.push({ term: { [fields.scope(field)]: filters[field] } });
      if (filters.container_tags?.length) filter.push({ terms: { [fields.scope('container_tags')]: filters.container_tags } });
      if (filters.source_ids?.length) filter.push({ terms: { [fields.sourceId]: filters.source_ids } });
      if (filters.document_ids?.length) filter.push({ terms: { [fields.documentId]: filters.document_ids } });
      if (filters.file_name !== undefined) filter.push({ term: { [fields.fileName]: filters.file_name } });
      if (filters.file_name_prefix !== undefined) filter.push({ prefix: { [fields.fileName]: filters.file_name_prefix } });
      return filter;
    };
    const wireScope = (field: ScopeValueField) => `scope.${field}`;
    // A job's summary keeps the request's scope (camelCase), and no file name: with one in the filters it cannot tell.
    const byFileName = filters.file_name !== undefined || filters.file_name_prefix !== undefined;
    if (!byFileName) await this.refreshJobSummaries();
    const [viaMemories, viaRecords, viaJobs] = await Promise.all([
      filters.records_only
        ? undefined
        : this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
            index: this.indices.memories,
            size: 0,
            query: { bool: { filter: clauses({ scope: wireScope, sourceId: 'provenance.source_id', documentId: 'provenance.document_id', fileName: 'provenance.file_name' }) } },
            aggs: { sources: { terms: { field: 'provenance.source_id', size: WINDOW } } },
          }),
      this.es.search<{ id: string }>({
        index: this.indices.sources,
        size: WINDOW,
        _source: ['id'],
        query: { bool: { filter: clauses({ scope: wireScope, sourceId: 'id', documentId: 'document_id', fileName: 'file_name' }) } },
      }),
      byFileName
        ? undefined
        : this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
            index: this.indices.jobs,
            size: 0,
            query: {
              bool: {
                filter: clauses({ scope: (field) => `scope.${REQUEST_SCOPE_FIELDS[field]}`, sourceId: 'source_id', documentId: 'document_id', fileName: 'file_name' }),
                must_not: { exists: { field: 'source_deleted_at' } },
              },
            },
            aggs: { sources: { terms: { field: 'source_id', size: WINDOW } } },
          }),
    ]);
    const keys = (aggregate: estypes.AggregationsStringTermsAggregate | undefined) =>
      Array.isArray(aggregate?.buckets) ? aggregate.buckets.map((bucket) => String(bucket.key)) : [];
    const matched = new Set([...keys(viaMemories?.aggregations?.sources), ...viaRecords.hits.hits.flatMap((hit) => (hit._source?.id ? [hit._source.id] : []))]);
    // Only a source without a record: one with a record matches by what it says now (a document
    // moved to other tags is not deleted under the tags its first job was sent with).
    const throughJobs = keys(viaJobs?.aggregations?.sources).filter((id) => !matched.has(id));
    const recorded = await this.readMany(tenant, throughJobs);
    return [...matched, ...throughJobs.filter((id) => !recorded.has(id))].sort();
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
   * (a job that failed before writing any memory) —, the entities their memories name, and those
   * summaries as read, to forget them. A summary an earlier delete of the source forgot names a job
   * whose content that delete cleared.
   */
  private async derivedFrom(tenant: string, sources: StoredSource[]): Promise<{ jobIds: string[]; mentioned: string[]; summaries: JobSummaryHit[] }> {
    const ids = sources.map((source) => source.id);
    const [memories, summaries] = await Promise.all([
      this.es.search<unknown, { jobs: estypes.AggregationsStringTermsAggregate; entities: estypes.AggregationsStringTermsAggregate }>({
        index: this.indices.memories,
        size: 0,
        query: this.memoriesOf(tenant, ids),
        aggs: { jobs: { terms: { field: 'provenance.job_id', size: WINDOW } }, entities: { terms: { field: 'entities.id', size: WINDOW } } },
      }),
      this.es.search<Record<string, unknown>>({
        index: this.indices.jobs,
        size: WINDOW,
        seq_no_primary_term: true,
        query: { bool: { filter: this.jobsOf(tenant, ids) } },
      }),
    ]);
    const keys = (aggregate: estypes.AggregationsStringTermsAggregate | undefined) =>
      Array.isArray(aggregate?.buckets) ? aggregate.buckets.map((bucket) => String(bucket.key)) : [];
    const jobIds = [
      ...new Set([
        ...sources.flatMap((source) => [...(source.job_ids ?? []), ...(source.turn_jobs ?? []), ...(source.last_job_id ? [source.last_job_id] : [])]),
        ...keys(memories.aggregations?.jobs),
        ...summaries.hits.hits.flatMap((hit) => (typeof hit._source?.job_id === 'string' ? [hit._source.job_id] : [])),
      ]),
    ].filter(Boolean);
    return { jobIds, mentioned: keys(memories.aggregations?.entities), summaries: summaries.hits.hits };
  }
}


type JobSummaryHit = estypes.SearchHit<Record<string, unknown>>;

/** A source found through its memories or jobs alone: none of its jobs completed to write its record. */
const recordless = (tenant: string, id: string) => ({ id, tenant }) as StoredSource;

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
  if (filters.file_name !== undefined && memo.file_name !== filters.file_name) return false;
  if (filters.file_name_prefix !== undefined && !memo.file_name?.startsWith(filters.file_name_prefix)) return false;
  return true;
}
