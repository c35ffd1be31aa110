import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import type { JobProgress } from './domain/job';
import { initialProgress } from './domain/initial-progress';
import { conflict, notFound, upstreamFailure } from './errors';
import { awaitFreshStart } from './fresh-start';
import { ingestWorkflowId } from './ids';
import { canonicalProgress, JobStatusReader } from './job-status';
import type { PendingStarts } from './pending-starts';
import { settlesWithin } from './promises';

/** How long a cancel or retry waits for this process to complete a job's start before a 409. */
const COMPLETING_WAIT_MS = 5_000;
/** How long a job status waits for its stored summary before answering from the workflow. */
const SUMMARY_READ_TIMEOUT_MS = 5_000;

/**
 * Finds a job and reads its state, wherever it is: a finished job's summary in Elasticsearch, an open
 * workflow's query, a start this process is still completing (PendingStarts: its record or journal
 * entry), or a start another API process is (awaitFreshStart). IngestJobs starts and steers jobs
 * through it.
 */
export class JobLookup {
  private readonly status: JobStatusReader;

  constructor(
    private readonly temporal: Client,
    private readonly pending: PendingStarts,
    /** The start of a job this process answered and is still completing, by workflow id. */
    private readonly completing: (workflowId: string) => Promise<void> | undefined,
    /** Where finished jobs' summaries are kept; none without Elasticsearch. */
    private readonly summaries?: { es: ElasticsearchClient; index: string },
  ) {
    this.status = new JobStatusReader(temporal);
  }

  handle(tenant: string, jobId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(ingestWorkflowId(tenant, jobId));
  }

  /**
   * A job's progress: a finished job from its stored summary (no workflow query: see JobStatusReader),
   * an open one from its workflow's query; undefined when neither Temporal nor the summaries know it.
   */
  async progress(tenant: string, jobId: string): Promise<JobProgress | undefined> {
    // With Elasticsearch down, a job Temporal still knows is answered from its workflow.
    let summaryFailure: unknown;
    const summary = await this.storedSummary(tenant, jobId).catch((error) => {
      summaryFailure = error;
      return undefined;
    });
    if (this.status.isFinal(summary)) return summary;
    try {
      // Had the summary been readable, a job that ended would have been answered from it: an ended
      // job is then not to be made up from its input (its record exists, unread).
      return await this.status.live(ingestWorkflowId(tenant, jobId), summaryFailure);
    } catch (error) {
      if (summary) return summary;
      const pending = await this.pendingProgress(tenant, jobId);
      if (pending) return pending;
      if (isNotFound(error) && !summaryFailure) {
        // No record now: had there been one at the first read, its start was acknowledged before it
        // was removed, so the workflow is there by now.
        const live = () =>
          this.status.live(ingestWorkflowId(tenant, jobId)).catch((again) => {
            if (isNotFound(again)) return undefined;
            throw upstreamFailure(`job status is unavailable: ${(again as Error).message}`);
          });
        // Accepted by another API process a moment ago, its start may not have landed yet.
        return (await live()) ?? awaitFreshStart(jobId, live);
      }
      const cause = isNotFound(error) ? summaryFailure : error;
      throw upstreamFailure(`job status is unavailable: ${(cause as Error).message}`);
    }
  }

  /** A job answered 2xx whose start is still being completed (startInBackground) reads as queued. */
  private async pendingProgress(tenant: string, jobId: string): Promise<JobProgress | undefined> {
    const record = await this.pending.read(jobId).catch(() => undefined);
    if (record?.workflowInput.request.tenant !== tenant) return undefined;
    return canonicalProgress(initialProgress(record.workflowInput, record.recordedAt));
  }

  /**
   * A job's workflow description; a job whose start is still being completed is waited for when this
   * process is completing it, and is a 409 to try again otherwise.
   */
  async describe(tenant: string, jobId: string): Promise<{ handle: WorkflowHandle; description: WorkflowExecutionDescription }> {
    const handle = this.handle(tenant, jobId);
    try {
      return { handle, description: await handle.describe() };
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const completing = this.completing(handle.workflowId);
      if (completing && (await settlesWithin(completing, COMPLETING_WAIT_MS))) return this.describe(tenant, jobId);
      if (await this.pendingProgress(tenant, jobId)) throw conflict(`job ${jobId} is still being started; try again in a moment`);
      const started = await awaitFreshStart(jobId, () => describedIfKnown(handle));
      if (started) return { handle, description: started };
      throw notFound(`job ${jobId}`);
    }
  }

  /**
   * The state of the latest run Temporal keeps under a job id (RUNNING, COMPLETED, FAILED, …), or
   * undefined when it keeps none (never started, or past the namespace's retention).
   */
  async runStatus(tenant: string, jobId: string): Promise<WorkflowExecutionDescription['status']['name'] | undefined> {
    return (await describedIfKnown(this.handle(tenant, jobId)))?.status.name;
  }

  async progressOrThrow(tenant: string, jobId: string): Promise<JobProgress> {
    const progress = await this.progress(tenant, jobId);
    if (!progress) throw notFound(`job ${jobId}`);
    return progress;
  }

  /** Compact summaries of finished jobs, by id; one round trip for a whole page of a listing. */
  async storedSummaries(tenant: string, jobIds: string[]): Promise<Map<string, JobProgress>> {
    const found = new Map<string, JobProgress>();
    if (!this.summaries || jobIds.length === 0) return found;
    const response = await this.summaries.es.mget<JobProgress>({ index: this.summaries.index, ids: jobIds.map((id) => `${tenant}:${id}`) });
    for (const doc of response.docs) {
      if ('found' in doc && doc.found && doc._source?.tenant === tenant) found.set(doc._source.job_id, canonicalProgress(doc._source));
    }
    return found;
  }

  /**
   * A finished job's summary. Read with a short timeout: with Elasticsearch stalled, an open job is
   * then answered from its workflow at once, not after the client's 30 s.
   */
  async storedSummary(tenant: string, jobId: string): Promise<JobProgress | undefined> {
    if (!this.summaries) return undefined;
    const response = await this.summaries.es.get<JobProgress>({ index: this.summaries.index, id: `${tenant}:${jobId}` }, { ignore: [404], requestTimeout: SUMMARY_READ_TIMEOUT_MS, maxRetries: 0 });
    return response.found && response._source?.tenant === tenant ? canonicalProgress(response._source) : undefined;
  }
}

/** The workflow's description, or undefined when Temporal does not know it. */
const describedIfKnown = (handle: WorkflowHandle): Promise<WorkflowExecutionDescription | undefined> =>
  handle.describe().catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)));

/**
 * Whether Temporal answered that the job's workflow does not exist: by type (or by name, across copies
 * of the SDK such as Jest's sandbox), or a message about a workflow the client left untranslated. Not
 * any "not found": "Namespace not found" is a misconfigured or missing namespace, an outage to report
 * (asServiceUnavailable), not a job to answer 404 for.
 */
export function isNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError) return true;
  const { name, message } = (error ?? {}) as { name?: string; message?: string };
  if (name === 'WorkflowNotFoundError') return true;
  return name !== 'NamespaceNotFoundError' && /\bworkflow\b.*\bnot found\b/i.test(message ?? '');
}
