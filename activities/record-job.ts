import type { estypes } from '@elastic/elasticsearch';
import { dropDerivedArtifacts } from '../lib/blob/store';
import type { JobProgress } from '../lib/domain/job';
import type { ActivityDeps } from './deps';
import { acceptedAtOf, type StageInput } from './types';
import { getDocument, retryOnVersionConflict } from '../lib/elasticsearch/client';
import { deleteMatching } from '../lib/elasticsearch/matching-writes';
import { versionOrder } from '../lib/domain/memory';
import { memoryScope } from '../lib/domain/scope';
import { eventOfJob } from '../lib/domain/webhook-event';
import { WebhookStore } from '../lib/webhooks';
import { assertNotBeingDeleted, Leases } from '../lib/leases';

/** Compare-and-sets of a source's record a job tries, each lost to another write landing first, before its activity retries. */
const RECORD_CHANGES = 21;

/** Who hears of a finished job: the tenant's webhooks subscribed to its event (absent when none). */
export interface JobAnnouncement {
  webhooks: string[];
  /** The job as its summary records it, where that counts other than the workflow's progress (a cancelled job's memories). */
  job?: JobProgress;
}

/**
 * Keeps a compact summary of a finished job (answerable after Temporal's retention) and the source
 * record that later re-sends of the same document or conversation are checked against.
 */
export function createRecordJobActivities(deps: ActivityDeps) {
  const webhooks = new WebhookStore(deps.es, deps.indices.webhooks, deps.config.CAIRN_ALLOW_PRIVATE_URLS);
  const leases = new Leases(deps.es, deps.indices.sequences);

  /** Writes the summary and answers which webhooks to tell (undefined when none: histories before webhooks recorded nothing). */
  async function recordJobSummary(reported: JobProgress): Promise<JobAnnouncement | undefined> {
    const progress = reported.status === 'cancelled' ? await countingWhatStays(reported) : reported;
    await deps.es.index({
      index: deps.indices.jobs,
      id: `${progress.tenant}:${progress.job_id}`,
      document: {
        job_id: progress.job_id,
        tenant: progress.tenant,
        status: progress.status,
        stage: progress.stage,
        kind: progress.kind,
        format: progress.format,
        document_type: progress.document_type,
        document_id: progress.document_id,
        surface: progress.surface,
        source_id: progress.source_id,
        source_url: progress.source_url,
        scope: progress.scope,
        categories: progress.categories,
        memories_created: progress.memories_created,
        counts: progress.counts,
        stages: progress.stages,
        errors: progress.errors,
        created_at: progress.created_at,
        updated_at: progress.updated_at,
        finished_at: progress.finished_at,
      },
      // Summaries are read by id (realtime mget: job status and listings), never searched: waiting for a
      // refresh here only held every job's completion back by up to a second.
      refresh: false,
    });
    // The job is over: what it derived on its way is not needed again (its input is kept).
    await dropDerivedArtifacts(deps.blobs, progress.tenant, progress.job_id);
    const event = eventOfJob(progress.status);
    const subscribed = event ? await webhooks.subscribedTo(progress.tenant, event) : [];
    if (subscribed.length === 0) return undefined;
    return progress === reported ? { webhooks: subscribed } : { webhooks: subscribed, job: progress };
  }

  /** What a send of the source carried, as the source record keeps it (replaced, not merged). */
  function sentWith({ jobId, request }: StageInput, title: string | undefined) {
    return {
      last_job_id: jobId,
      title,
      // Replaced, not merged: what this send had, or nothing.
      metadata_json: request.metadata ? JSON.stringify(request.metadata) : null,
      categories: request.categories ?? null,
      mode: request.mode ?? null,
    };
  }

  /**
   * What the source record says of the content a send carried: written when the source is first
   * recorded, and again by each version that becomes the source's (claimVersion), which writes what
   * it lacks as null, since a partial update would keep the earlier version's.
   */
  function contentFields(request: StageInput['request'], absent: null | undefined) {
    const or = <T>(value: T | undefined) => value ?? absent;
    return {
      kind: request.kind,
      format: request.format,
      document_type: request.documentType,
      document_date: or(request.documentDate),
      file_name: or(request.fileName),
      blob_key: or(request.blobKey),
      source_url: or(request.sourceUrl),
      scope: Object.fromEntries(Object.entries(memoryScope(request.tenant, request.scope)).map(([field, value]) => [field, or(value)])),
    };
  }

  /**
   * A cancelled job's memories as they are stored. A small job's stages run in one workflow task, and a
   * cancel arriving meanwhile has the server refuse that task's completion: the job is then cancelled
   * from its start as its history tells it, its counts at zero, while what the refused task indexed
   * (and recorded) stays searchable.
   */
  async function countingWhatStays(progress: JobProgress): Promise<JobProgress> {
    const { count } = await deps.es.count({
      index: deps.indices.memories,
      query: { bool: { filter: [{ term: { tenant: progress.tenant } }, { term: { 'provenance.job_id': progress.job_id } }] } },
    });
    return count === progress.memories_created ? progress : { ...progress, memories_created: count, counts: { ...progress.counts, memories: count } };
  }

  async function recordSource(input: StageInput, summary: { title?: string; contentHash?: string }): Promise<void> {
    const { jobId, sourceId, request } = input;
    await assertNotBeingDeleted(leases, request.tenant, sourceId);
    const now = new Date().toISOString();
    const upsert = {
      id: sourceId,
      tenant: request.tenant,
      ...contentFields(request, undefined),
      document_id: request.documentId,
      title: summary.title ?? request.title,
      metadata: request.metadata,
      metadata_json: request.metadata ? JSON.stringify(request.metadata) : undefined,
      categories: request.categories,
      mode: request.mode,
      accepted_at: acceptedAtOf(input),
      last_job_id: jobId,
      job_ids: [jobId],
      // When it was first sent, as a conversation's record (written when it is accepted) says too.
      created_at: acceptedAtOf(input) ?? now,
      updated_at: now,
    };
    // The latest send's metadata, categories and mode: what a re-extraction of the source asks again.
    // A version's are written with its claim (retireEarlierVersions), only if it is the newest.
    // Listed when the job is completed (documents.list, Crosmos' sources.list, a bulk delete by scope
    // search the records): the record's write waits for a refresh, unless a version claim writes the
    // record again after it (claimVersion waits instead).
    if (input.versionAt) return writeRecord(sourceId, { updated_at: now }, upsert, false);
    const sent = { ...sentWith(input, summary.title), updated_at: now };
    const write = request.format === 'CONVERSATION' ? () => writeRecord(sourceId, sent, upsert, 'wait_for') : () => recordUnversionedSend(sourceId, sent, upsert);
    await deps.promptRefresh.write(deps.indices.sources, write);
  }

  async function writeRecord(sourceId: string, doc: object, upsert: object, refresh: false | 'wait_for'): Promise<void> {
    await deps.es.update({
      index: deps.indices.sources,
      id: sourceId,
      doc,
      upsert,
      // Jobs of one source finishing together update one record: Elasticsearch reads and rewrites it,
      // refusing a write that another landed in between. The change is a merge of this job's fields,
      // so it is simply applied again to the newer record, not failed back to the workflow.
      retry_on_conflict: 10,
      refresh,
    });
  }

  /**
   * A document's, file's or URL's send without a version: a re-extraction of a source that has none,
   * or a job the release before content sent without an id was versioned started (or a retry of one),
   * which may finish after the same content was sent again. No version is the earliest (versionOrder):
   * once a version is recorded its send stands, and this one writes only its time. Compare-and-set, as
   * a version's claim may land meanwhile (claimVersion).
   */
  async function recordUnversionedSend(sourceId: string, sent: object, upsert: { updated_at: string }): Promise<void> {
    await retryOnVersionConflict(RECORD_CHANGES, async () => {
      const { record, version } = await readVersion(sourceId);
      if (!record) return void (await deps.es.create({ index: deps.indices.sources, id: sourceId, document: upsert, refresh: 'wait_for' }));
      const doc = version ? { updated_at: upsert.updated_at } : sent;
      await deps.es.update({ index: deps.indices.sources, id: sourceId, doc, if_seq_no: record.seqNo, if_primary_term: record.primaryTerm, refresh: 'wait_for' });
    });
  }

  /**
   * A replaceable source's completed version (input.versionAt) becomes the source's current one unless
   * a newer version completed first; then the memories of every other version go: earlier versions'
   * (and those written before versions were kept) when this one is the newest, this version's own when
   * a newer one already completed. An edited memory (`updated_at` set) is never removed, nor one another
   * writer changes meanwhile into what the query leaves out (conditional deletes). Idempotent: a retry
   * finds less or nothing to remove. Answers how many memories it removed.
   */
  async function retireEarlierVersions(input: StageInput, outcome: { completed: true; title?: string } | { completed: false }): Promise<number> {
    const { jobId, sourceId, request, versionAt } = input;
    if (!versionAt) return 0;
    // A version that did not complete claims nothing: it only removes what it wrote once a newer
    // version is the source's (a failed or cancelled newest version keeps what it indexed, as any job).
    const current = outcome.completed ? await claimVersion(input, versionAt, outcome.title) : (await readVersion(sourceId)).version;
    const order = versionOrder(current, versionAt);
    if (!outcome.completed && order <= 0) return 0;
    const newest = order === 0;
    const stale: estypes.QueryDslQueryContainer =
      newest
        ? { bool: { should: [{ range: { 'provenance.version_at': { lt: versionAt } } }, { bool: { must_not: { exists: { field: 'provenance.version_at' } } } }], minimum_should_match: 1 } }
        : { term: { 'provenance.version_at': new Date(versionAt).toISOString() } };
    const query: estypes.QueryDslQueryContainer = {
      bool: {
        filter: [{ term: { tenant: request.tenant } }, { term: { 'provenance.source_id': sourceId } }, stale],
        must_not: [
          // Edited by hand: kept.
          { exists: { field: 'updated_at' } },
          // Never this job's own writes when it is the newest (one a worker of an older build wrote
          // has no version_at), nor a conversation's that shares the caller's id (not versioned).
          ...(outcome.completed && newest ? [{ term: { 'provenance.job_id': jobId } }] : []),
          { term: { 'provenance.format': 'CONVERSATION' } },
        ],
      },
    };
    // A memory changed meanwhile is read again: a newer version's write or an edit no longer matches.
    return deleteMatching(deps.es, deps.indices.memories, query, "an earlier version's memories");
  }

  /** The source's record (for a compare-and-set on it) and the version it records, if any. */
  async function readVersion(sourceId: string) {
    const record = await getDocument<{ version_at?: string }>(deps.es, { index: deps.indices.sources, id: sourceId });
    return { record, version: record?.source.version_at };
  }

  /**
   * Records `versionAt` as the source's version unless a newer one is recorded; answers the version
   * recorded after that. Compare-and-set on the record's sequence number (no scripts on this cluster).
   */
  async function claimVersion(input: StageInput, versionAt: string, title: string | undefined): Promise<string> {
    const { sourceId, request } = input;
    return retryOnVersionConflict(RECORD_CHANGES, async () => {
      const { record, version: recorded } = await readVersion(sourceId);
      if (recorded && versionOrder(recorded, versionAt) >= 0) return recorded;
      // recordSource ran first in this job: the record exists.
      if (!record) return versionAt;
      // What the version was sent as: a re-extraction reads the current version's content.
      const version = { ...sentWith(input, title), version_at: versionAt, ...contentFields(request, null) };
      // Searchable when the job completes, as recordSource's write is for a source without versions.
      await deps.promptRefresh.write(deps.indices.sources, () =>
        deps.es.update({ index: deps.indices.sources, id: sourceId, doc: version, if_seq_no: record.seqNo, if_primary_term: record.primaryTerm, refresh: 'wait_for' }),
      );
      return versionAt;
    });
  }

  /**
   * A completed job's bookkeeping in one activity (since revision 8): the source record, the retiring
   * of a replaceable source's other versions, then the summary. Each step is idempotent, so a retry
   * runs them all again. One local activity instead of three saves two workflow activations and
   * markers per job (about 5 ms of CPU each across the worker, its workflow thread and the server).
   */
  async function completeJob(input: StageInput, progress: JobProgress, summary: { title?: string }): Promise<JobAnnouncement | undefined> {
    await recordSource(input, summary);
    await retireEarlierVersions(input, { completed: true, title: summary.title });
    return recordJobSummary(progress);
  }

  return { recordJobSummary, recordSource, retireEarlierVersions, completeJob };
}
