import { dropDerivedArtifacts } from '../lib/blob/store';
import type { JobProgress } from '../lib/domain/job';
import type { ActivityDeps } from './deps';
import { acceptedAtOf, type StageInput } from './types';
import { memoryScope } from '../lib/domain/scope';
import { eventOfJob } from '../lib/domain/webhook-event';
import { WebhookStore } from '../lib/webhooks';

/** Who hears of a finished job: the tenant's webhooks subscribed to its event (absent when none). */
export interface JobAnnouncement {
  webhooks: string[];
}

/**
 * Keeps a compact summary of a finished job (answerable after Temporal's retention) and the source
 * record that later re-sends of the same document or conversation are checked against.
 */
export function createRecordJobActivities(deps: ActivityDeps) {
  const webhooks = new WebhookStore(deps.es, deps.indices.webhooks, deps.config.CAIRN_ALLOW_PRIVATE_URLS);

  /** Writes the summary and answers which webhooks to tell (undefined when none: histories before webhooks recorded nothing). */
  async function recordJobSummary(progress: JobProgress): Promise<JobAnnouncement | undefined> {
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
    return subscribed.length > 0 ? { webhooks: subscribed } : undefined;
  }

  async function recordSource(input: StageInput, summary: { title?: string; contentHash?: string }): Promise<void> {
    const { jobId, sourceId, request } = input;
    const now = new Date().toISOString();
    await deps.es.update({
      index: deps.indices.sources,
      id: sourceId,
      // The latest send's metadata, categories and mode: what a re-extraction of the source asks again.
      doc: {
        last_job_id: jobId,
        updated_at: now,
        title: summary.title,
        // Replaced, not merged: what this send had, or nothing.
        metadata_json: request.metadata ? JSON.stringify(request.metadata) : null,
        categories: request.categories ?? null,
        mode: request.mode ?? null,
      },
      upsert: {
        id: sourceId,
        tenant: request.tenant,
        kind: request.kind,
        format: request.format,
        document_type: request.documentType,
        document_id: request.documentId,
        document_date: request.documentDate,
        source_url: request.sourceUrl,
        file_name: request.fileName,
        title: summary.title ?? request.title,
        blob_key: request.blobKey,
        scope: memoryScope(request.tenant, request.scope),
        metadata: request.metadata,
        metadata_json: request.metadata ? JSON.stringify(request.metadata) : undefined,
        categories: request.categories,
        mode: request.mode,
        accepted_at: acceptedAtOf(input),
        last_job_id: jobId,
        job_ids: [jobId],
        created_at: now,
        updated_at: now,
      },
      // Sources are read by id (realtime), never searched right after a job: no need to wait for a refresh.
      refresh: false,
    });
  }

  return { recordJobSummary, recordSource };
}
