import type { Client, estypes } from '@elastic/elasticsearch';
import type { IndexNames } from './elasticsearch/indices';
import { deleteMatching, getDocument, type StoredDocument } from './elasticsearch/client';
import { conflict, notFound, upstreamFailure } from './errors';
import type { JobListings } from './job-listing';
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

/** What `DELETE /v1/sources/:id` removed. */
export interface SourceDeletion {
  source_id: string;
  memories_deleted: number;
  /** Entities that only this source mentioned. */
  entities_deleted: number;
  /** Entities other sources mention too: they stay, no longer naming this source. */
  entities_updated: number;
  /** Jobs whose stored content (upload, fetched page, artifacts) was removed. */
  jobs_cleared: number;
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
    const [stored, open] = await Promise.all([this.read(tenant, id), this.listings.openJobsOf(tenant, id)]);
    if (open.length > 0) {
      throw conflict(`source ${id} has a job still queued or running (${open.slice(0, 3).join(', ')}): cancel it (POST /v1/jobs/{id}/cancel) or wait for it to end, then delete the source`);
    }
    if (!stored) throw notFound(`source ${id}`);
    const jobIds = await this.jobIdsOf(tenant, id, stored.source);

    const ofSource: estypes.QueryDslQueryContainer = { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': id } }] } };
    const memoriesDeleted = await deleteMatching(this.es, this.indices.memories, ofSource, "the source's memories");
    // deleteMatching leaves a memory changed since it was read (an edit landing now) to its writer.
    if ((await this.memoryCount(tenant, id)) > 0) throw conflict(`memories of source ${id} changed while it was being deleted; send the DELETE again`);
    const entities = await this.forgetInEntities(tenant, id);
    await this.jobs.dropContent(tenant, jobIds);
    await this.es.delete({ index: this.indices.sources, id, refresh: 'wait_for' }, { ignore: [404] });
    return { source_id: id, memories_deleted: memoriesDeleted, entities_deleted: entities.deleted, entities_updated: entities.updated, jobs_cleared: jobIds.length };
  }

  private read(tenant: string, id: string): Promise<StoredDocument<StoredSource> | undefined> {
    return getDocument<StoredSource>(this.es, { index: this.indices.sources, id }, tenant);
  }

  private async memoryCount(tenant: string, id: string): Promise<number> {
    const { count } = await this.es.count({
      index: this.indices.memories,
      query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': id } }] } },
    });
    return count;
  }

  private async memoryCounts(tenant: string, ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const response = await this.es.search<unknown, { sources: estypes.AggregationsStringTermsAggregate }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: [{ term: { tenant } }, { terms: { 'provenance.source_id': ids } }] } },
      aggs: { sources: { terms: { field: 'provenance.source_id', size: ids.length } } },
    });
    const buckets = response.aggregations?.sources.buckets;
    return new Map(Array.isArray(buckets) ? buckets.map((bucket) => [String(bucket.key), bucket.doc_count]) : []);
  }

  /**
   * Every job that stored content for the source: those its record names, those that wrote its
   * memories, and those whose summaries name it (a job that failed before writing any memory).
   */
  private async jobIdsOf(tenant: string, id: string, source: StoredSource): Promise<string[]> {
    const [memories, summaries] = await Promise.all([
      this.es.search<unknown, { jobs: estypes.AggregationsStringTermsAggregate }>({
        index: this.indices.memories,
        size: 0,
        query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': id } }] } },
        aggs: { jobs: { terms: { field: 'provenance.job_id', size: WINDOW } } },
      }),
      this.es.search<{ job_id: string }>({
        index: this.indices.jobs,
        size: WINDOW,
        _source: ['job_id'],
        query: { bool: { filter: [{ term: { tenant } }, { term: { source_id: id } }] } },
      }),
    ]);
    const buckets = memories.aggregations?.jobs.buckets;
    return [
      ...new Set([
        ...(source.job_ids ?? []),
        ...(source.turn_jobs ?? []),
        ...(source.last_job_id ? [source.last_job_id] : []),
        ...(Array.isArray(buckets) ? buckets.map((bucket) => String(bucket.key)) : []),
        ...summaries.hits.hits.flatMap((hit) => (hit._source?.job_id ? [hit._source.job_id] : [])),
      ]),
    ].filter(Boolean);
  }

  /**
   * Each entity that names the source loses it; one left naming no source is deleted. Conditional on
   * the version read (an entity a job updates meanwhile is read again on the next pass), a page at a
   * time, until none names the source.
   */
  private async forgetInEntities(tenant: string, id: string): Promise<{ deleted: number; updated: number }> {
    const counts = { deleted: 0, updated: 0 };
    for (let pass = 0; ; pass++) {
      const { hits } = await this.es.search<{ source_ids?: string[] }>({
        index: this.indices.entities,
        size: 1000,
        _source: ['source_ids'],
        seq_no_primary_term: true,
        query: { bool: { filter: [{ term: { tenant } }, { term: { source_ids: id } }] } },
      });
      if (hits.hits.length === 0) return counts;
      if (pass >= 20) throw upstreamFailure(`the entities of source ${id} kept changing while it was being deleted`);
      const operations = hits.hits.flatMap((hit): estypes.BulkRequest['operations'] & object => {
        const remaining = (hit._source?.source_ids ?? []).filter((sourceId) => sourceId !== id);
        const version = { _index: hit._index, _id: hit._id!, if_seq_no: hit._seq_no, if_primary_term: hit._primary_term };
        return remaining.length === 0 ? [{ delete: version }] : [{ update: version }, { doc: { source_ids: remaining } }];
      });
      const response = await this.es.bulk({ refresh: 'wait_for', operations });
      for (const item of response.items) {
        const [action, result] = Object.entries(item)[0]!;
        if (result.status === 409 || result.status === 404) continue;
        if (result.error) throw upstreamFailure(`Elasticsearch could not update the entities of source ${id}: ${result.error.reason ?? result.status}`);
        counts[action === 'delete' ? 'deleted' : 'updated'] += 1;
      }
    }
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
