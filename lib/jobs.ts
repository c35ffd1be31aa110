import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import {
  ActivityFailure,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Workflow, WorkflowIdReusePolicy } from '@temporalio/common';
import type { ActiveWriteResult } from '../activities/write-active';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { JOURNAL_MAX_CONTENT_BYTES, type AcceptJournal } from './accept-journal';
import { dropJobBlobs, type BlobStore } from './blob/store';
import { acceptanceTime } from './clock';
import type { Config } from './config';
import type { IngestRequestInput } from './domain/ingest';
import { INGEST_REVISION } from './domain/ingest-revision';
import { isPartlyCompleted, type JobProgress } from './domain/job';
import { indexNames } from './elasticsearch/indices';
import { CairnError, conflict, upstreamFailure, type ErrorCode } from './errors';
import { ingestWorkflowId, sha256 } from './ids';
import { byteLengthOf, jobMemo, prepareJob, type IngestContent, type PreparedJob, type StartOptions } from './job-request';
import { startInputOf } from './job-status';
import type { Logger } from './logger';
import { mapBounded } from './map-bounded';
import { JobLookup } from './job-lookup';
import { PendingStarts, type PendingStart } from './pending-starts';
import { firstFulfilled, settlesWithin, within } from './promises';
import { RecentStarts } from './recent-starts';
import { StartSweep } from './start-sweep';
import { ingestJobAttributes } from './temporal/search-attributes';

/** A fresh job is answered before its start is acknowledged only if Temporal acknowledged one this recently. */
const TEMPORAL_ANSWERING_MS = 10_000;
/** The longest a Tex active write (its start, and the fragments embedded and indexed) may take before a 503. */
const ACTIVE_WRITE_DEADLINE_MS = 30_000;

/**
 * An active write whose update failed, as the caller is told: its activity's own failure — a model or
 * Elasticsearch still failing after the update's retries is a 503 to retry, bad input a 400 — not the
 * update's wrapper, which answered 500.
 */
function activeWriteFailure(error: unknown): unknown {
  if (!(error instanceof WorkflowUpdateFailedError)) return error;
  let cause: unknown = error.cause;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  const failure = cause as { message?: string; type?: string; nonRetryable?: boolean } | undefined;
  const message = `the active write failed: ${failure?.message ?? error.message}`;
  return failure?.nonRetryable && failure.type && failure.type !== 'upstream_failure' ? new CairnError(failure.type as ErrorCode, message) : upstreamFailure(message);
}

export interface StartedJob {
  jobId: string;
  sourceId: string;
  workflowId: string;
  status: 'queued';
  /** When the job was accepted: its created_at wherever it is read back. */
  createdAt: string;
}

/**
 * The steps an accepted job waits on, each timed on its own (`IngestJobs.onAcceptStep`): a fresh
 * job's upload written (visible to readers) and then flushed to stable storage, the workflow start
 * until Temporal acknowledged it, and, for a fresh job whose start outlasted ACCEPT_START_WAIT_MS, the
 * start's record written and flushed; or, for a journaled job, only its entry appended and flushed.
 * Whether a slow acceptance waited on the disk or on Temporal.
 */
export type AcceptStep = 'upload_write' | 'upload_flush' | 'start' | 'start_record' | 'journal';

/**
 * Starts and steers ingest jobs: the content is written to the blob store and the workflow is
 * started, and only once the content is flushed to stable storage and the start acknowledged — or,
 * for a fresh job whose start is slow, recorded on stable storage (startInBackground) — does the
 * caller answer 2xx, so anything accepted is durable. (A fresh job overlaps the flush and the start;
 * a job under a caller-derived id, which a re-send can join, flushes first: see prepareJob in
 * job-request.ts.) With the API's acceptance journal, a fresh job is answered once it is flushed there
 * instead, and both complete in the background (startJournaled). Jobs are found and read through JobLookup
 * (job-lookup.ts).
 */
export class IngestJobs {
  private readonly pending: PendingStarts;
  private readonly lookup: JobLookup;
  /** Starts completing after their caller was answered (startInBackground), by workflow id. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** When Temporal last acknowledged a start from this process (epoch ms). */
  private lastAcknowledgedAt = 0;
  /** Fresh jobs answered before their start was acknowledged, since this process started. */
  private acceptedEarly = 0;
  private readonly sweep: StartSweep;
  private readonly recent = new RecentStarts();
  /** Told how long each step of an acceptance took, in seconds, once it has succeeded (set by ApiMetrics). */
  onAcceptStep?: (step: AcceptStep, seconds: number) => void;

  constructor(
    private readonly temporal: Client,
    private readonly blobs: BlobStore,
    readonly config: Config,
    es?: ElasticsearchClient,
    private readonly log?: Logger,
    /** This process's acceptance journal (api/main.ts); without one, every job is accepted as below. */
    private readonly journal?: AcceptJournal,
  ) {
    this.pending = new PendingStarts(blobs, journal);
    const jobsIndex = indexNames(config.ELASTICSEARCH_INDEX_PREFIX).jobs;
    this.lookup = new JobLookup(temporal, this.pending, (workflowId) => this.inFlight.get(workflowId), es && { es, index: jobsIndex });
    this.sweep = new StartSweep({
      pending: this.pending,
      blobs,
      startingHere: (workflowId) => this.inFlight.has(workflowId),
      start: (workflowInput) => this.startRun(workflowInput, 'REJECT_DUPLICATE'),
      log,
    });
  }

  get client(): Client {
    return this.temporal;
  }

  /**
   * A job id derived from what the caller sent (a Synap document_id, a Tex write), 32 hex digits.
   * The deployment (index prefix) is mixed in: deployments sharing a Temporal namespace never collide.
   */
  derivedJobId(tenant: string, ...parts: string[]): string {
    return sha256('derived-job', this.config.ELASTICSEARCH_INDEX_PREFIX, tenant, ...parts).slice(0, 32);
  }

  async start(input: IngestRequestInput & IngestContent, options: StartOptions = {}): Promise<StartedJob> {
    // Text is encoded once, here: the journal's size check, the format limit and the upload then all
    // read the same bytes (each measured or encoded a string of its own before).
    if (typeof input.content === 'string' && this.journal?.usable) input = { ...input, content: Buffer.from(input.content) };
    if (this.journals(input, options)) {
      const journaled = await this.startJournaled(input, options);
      if (journaled) return journaled;
    }
    const { workflowInput, workflowId, durable } = await this.prepare(input, options);
    const blobKey = workflowInput.request.blobKey;
    const started: StartedJob = { jobId: workflowInput.jobId, sourceId: workflowInput.sourceId, workflowId, status: 'queued', createdAt: workflowInput.createdAt };
    try {
      // A fresh id is started once: a start that lands after a sweep started the job (and it may
      // have finished or been cancelled since) must not run it again.
      const starting = this.startRun(workflowInput, options.rejectDuplicate ? 'ALLOW_DUPLICATE_FAILED_ONLY' : options.jobId ? undefined : 'REJECT_DUPLICATE', options.retryOf);
      // Only a fresh job id overlaps the flush (prepareJob): nobody else can have joined its run.
      const acknowledged = this.whileFlushing(durable, starting, (handle) => handle.terminate('the content of the request could not be stored durably'));
      // Awaited below, or handed to startInBackground; meanwhile a failure is not an unhandled rejection.
      acknowledged.catch(() => undefined);
      // A fresh job whose start is slow is answered once it is recorded instead (startInBackground).
      // Only while Temporal is answering: with the server down, the caller is told so (503), not
      // handed a job that waits for it.
      const waitMs = this.config.ACCEPT_START_WAIT_MS;
      if (options.jobId || waitMs === 0 || Date.now() - this.lastAcknowledgedAt > TEMPORAL_ANSWERING_MS) await this.acknowledgedInTime(acknowledged, !options.jobId);
      else if (await settlesWithin(starting.catch(() => undefined), waitMs)) await acknowledged;
      else await this.startInBackground(workflowInput, workflowId, acknowledged, durable);
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        // The blob written for this refused request is not the running job's: drop it.
        if (blobKey) await this.blobs.delete(blobKey).catch(() => undefined);
        throw conflict(`a job for this source already exists (job ${workflowInput.jobId})`);
      }
      // A fresh job's start that failed (Temporal down): nothing was answered 2xx and no one else can
      // name the job, so its upload goes too. (Should the start have landed after all, that run fails
      // for want of its content, a job no caller was told of.) A caller-derived id's upload stays: a
      // run that did start is joined or refused as a duplicate when the caller sends it again.
      if (blobKey && !options.jobId) await this.blobs.delete(blobKey).catch(() => undefined);
      throw error;
    }
    return started;
  }

  /**
   * The start's acknowledgement, or after ACCEPT_START_DEADLINE_MS a 503: a Temporal that takes connections
   * but does not answer (stalled, frozen) held the request as long as it did, and the job then ran once
   * it answered, after the caller had given up (and, retrying, sent it again). A fresh job's run that
   * lands after the 503 is ended at once (its upload is dropped by the caller's error path); a
   * caller-derived id's is left to be joined by the caller's retry, as any start that failed.
   */
  private acknowledgedInTime(acknowledged: Promise<WorkflowHandle>, fresh: boolean): Promise<WorkflowHandle> {
    const deadlineMs = this.config.ACCEPT_START_DEADLINE_MS;
    return within(acknowledged, deadlineMs, () => {
      if (fresh) {
        void acknowledged
          .then((handle) => handle.terminate('not accepted: the API answered 503, as Temporal had not acknowledged the start in time'), () => undefined)
          .catch((error) => this.log?.warn({ err: error }, 'could not end the run of a job whose start was answered 503'));
      }
      throw upstreamFailure(`Temporal is unavailable: it did not acknowledge the job's start within ${deadlineMs / 1000} s (down, stalled or overloaded), so the job was not accepted; retry later`);
    });
  }

  /**
   * Whether a job is accepted through the journal: a fresh job (a caller-derived id can be joined by
   * a re-send, which must find its run), with an upload small enough to journal, while Temporal is
   * answering (with the server down, the caller is told so, 503, not handed a job that waits for it).
   */
  private journals(input: IngestContent, options: StartOptions): boolean {
    if (!this.journal?.usable || options.jobId || options.retryOf) return false;
    if (Date.now() - this.lastAcknowledgedAt > TEMPORAL_ANSWERING_MS) return false;
    return input.content === undefined || byteLengthOf(input.content) <= JOURNAL_MAX_CONTENT_BYTES;
  }

  /**
   * A fresh job answered once its entry — workflow input and upload — is on stable storage in the
   * journal (AcceptJournal); its upload is written to the blob store and its workflow started in the
   * background, and the entry released once both are done. One that fails there stays in the journal
   * for the sweep (resumePendingStarts), never dropped. Undefined when the journal could not take the
   * entry (it then stops taking any): the job is accepted the usual way, nothing having been answered.
   */
  private async startJournaled(input: IngestRequestInput & IngestContent, options: StartOptions): Promise<StartedJob | undefined> {
    const { workflowInput, workflowId, upload } = await this.prepare(input, options, true);
    const journaling = performance.now();
    try {
      await this.journal!.append({ workflowInput, recordedAt: new Date().toISOString(), content: upload?.content });
    } catch {
      return undefined;
    }
    this.timeStep('journal', journaling);
    const { jobId } = workflowInput;
    const settled = this.completeJournaledStart(workflowInput, upload)
      .then(
        () => undefined,
        (error) => this.log?.warn({ err: error, job_id: jobId }, 'the start of a journaled job failed; the next sweep retries it'),
      )
      .finally(() => this.inFlight.delete(workflowId));
    this.inFlight.set(workflowId, settled);
    this.acceptedEarly += 1;
    return { jobId, sourceId: workflowInput.sourceId, workflowId, status: 'queued', createdAt: workflowInput.createdAt };
  }

  /** Writes a journaled job's upload, flushed, then starts it; the entry goes once both are done. */
  private async completeJournaledStart(workflowInput: IngestWorkflowInput, upload?: { key: string; content: Buffer }): Promise<void> {
    if (upload) await this.blobs.put(upload.key, upload.content);
    await this.pending.settle(workflowInput.jobId, this.startRun(workflowInput, 'REJECT_DUPLICATE'));
  }

  /**
   * A fresh job whose start Temporal has not acknowledged within ACCEPT_START_WAIT_MS: its start is
   * recorded on stable storage, and the caller is answered once the upload is flushed and the job
   * can no longer be lost — its record flushed, or its start acknowledged after all, whichever comes
   * first (under a busy disk the record's flush often outlasts the start it stands in for). The
   * start completes in the background; the record goes once the start is acknowledged and the record
   * has settled. Should this process stop first, the next sweep starts the job from the record
   * (resumePendingStarts). Acceptance then costs a local flush, not Temporal's slowest starts (its
   * persistence queues every write behind one connection on the dev server).
   */
  private async startInBackground(workflowInput: IngestWorkflowInput, workflowId: string, acknowledged: Promise<WorkflowHandle>, durable: Promise<void>): Promise<void> {
    const { jobId } = workflowInput;
    const recorded = this.pending.record(workflowInput);
    this.timeStep('start_record', performance.now(), recorded);
    recorded.catch(() => undefined);
    const [kept, flushed] = await Promise.allSettled([firstFulfilled({ recorded, started: acknowledged }), durable]);
    const failure = [kept, flushed].find((outcome) => outcome.status === 'rejected');
    if (failure) {
      // Not answered 2xx, so nothing may run: the start is undone when it lands, and the caller's
      // error path drops the upload. The record is removed once written: one removed while still
      // being written would stay.
      void acknowledged
        .then((handle) => handle.terminate('the request could not be stored durably'), () => undefined)
        .catch((undo) => this.log?.warn({ err: undo, job_id: jobId }, 'could not end the run of a job whose request was not stored'));
      await recorded.catch(() => undefined);
      await this.pending.remove(jobId).catch(() => undefined);
      throw failure.reason instanceof AggregateError ? failure.reason.errors[0] : failure.reason;
    }
    const settled = this.pending.settle(jobId, acknowledged, recorded)
      .then(
        () => undefined,
        (error) => this.log?.warn({ err: error, job_id: jobId }, 'the start of an accepted job failed; the next sweep retries it'),
      )
      .finally(() => this.inFlight.delete(workflowId));
    this.inFlight.set(workflowId, settled);
    if (kept.status === 'fulfilled' && kept.value === 'recorded') this.acceptedEarly += 1;
  }

  /** For the API's metrics: jobs answered before their start was acknowledged, and starts still completing. */
  startStats(): { acceptedEarly: number; completing: number; failing: number } {
    return { acceptedEarly: this.acceptedEarly, completing: this.inFlight.size, failing: this.sweep.failingCount };
  }

  /**
   * Starts the jobs answered 2xx whose start was recorded or journaled at least `olderThanMs` ago and
   * never acknowledged (StartSweep). Run by the API at start-up and then periodically. Returns how
   * many jobs it started.
   */
  resumePendingStarts(olderThanMs = 30_000, now = Date.now()): Promise<number> {
    return this.sweep.run(olderThanMs, now);
  }

  /** Waits for the starts still completing in the background (a stopping API calls this last). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /**
   * Tex's write: Update-With-Start on the ingest workflow. The update indexes the turns as
   * searchable fragments and answers with their ids; the same workflow then runs passive enrichment
   * over the new turns. A re-sent write with the same job id joins the running workflow.
   */
  async startActiveWrite(input: IngestRequestInput & IngestContent, options: StartOptions & { jobId: string }): Promise<StartedJob & { active: ActiveWriteResult }> {
    const { workflowInput, workflowId, durable } = await this.prepare(input, options);
    workflowInput.activeWrite = true;
    const operation = new WithStartWorkflowOperation('ingestWorkflow', {
      ...this.startOptions(workflowInput, undefined, true),
      workflowId,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    // The job id is derived (options.jobId): the upload was flushed before this start (prepareJob).
    await durable;
    const writing = this.temporal.workflow.executeUpdateWithStart<Workflow, ActiveWriteResult, []>('writeActive', {
      startWorkflowOperation: operation,
    });
    // A write that lands after the 503 is joined by the caller's retry (the same id, per-turn idempotent).
    const active = await within(writing, ACTIVE_WRITE_DEADLINE_MS, () => {
      throw upstreamFailure(`Temporal is unavailable: it did not answer the write within ${ACTIVE_WRITE_DEADLINE_MS / 1000} s (down, stalled or overloaded); retry it: the same write joins its run`);
    }).catch((error) => {
      throw activeWriteFailure(error);
    });
    return { jobId: workflowInput.jobId, sourceId: workflowInput.sourceId, workflowId, status: 'queued', createdAt: workflowInput.createdAt, active };
  }

  /**
   * The job's start (`start`, already under way) and the flush of the request's upload to stable
   * storage, settled together: succeeds only once both have. The 2xx still means the content is on
   * disk, and the answer waits for the slower of the two instead of their sum (the flush is ~3 ms at p50, ~20 ms at p99 beside a busy
   * Elasticsearch). The workflow may read the blob meanwhile: it is visible before it is flushed.
   * A start that fails is the error reported; a flush that fails after a successful start is
   * reported once `undo` has ended the run, since the caller is answered with an error.
   */
  private async whileFlushing<T>(durable: Promise<void>, start: Promise<T>, undo: (started: T) => Promise<unknown>): Promise<T> {
    const [started, flushed] = await Promise.allSettled([start, durable]);
    if (started.status === 'rejected') throw started.reason;
    if (flushed.status === 'rejected') {
      await undo(started.value).catch(() => undefined);
      throw flushed.reason;
    }
    return started.value;
  }

  /** See prepareJob; with `journaled`, the upload is handed back unwritten (startJournaled). */
  private prepare(input: IngestRequestInput & IngestContent, options: StartOptions, journaled = false): Promise<PreparedJob> {
    const timeUpload = (writing: number, durable: Promise<void>) => {
      this.timeStep('upload_write', writing);
      this.timeStep('upload_flush', performance.now(), durable);
    };
    return prepareJob(input, options, { config: this.config, blobs: this.blobs, timeUpload }, journaled);
  }

  /** Starts a job's ingest workflow; an acknowledged start tells this process Temporal is answering. */
  private async startRun(workflowInput: IngestWorkflowInput, workflowIdReusePolicy: WorkflowIdReusePolicy | undefined, retryOf?: string): Promise<WorkflowHandle> {
    const starting = performance.now();
    const handle = await this.temporal.workflow.start('ingestWorkflow', {
      // Any policy but REJECT_DUPLICATE lets a later send run the id again (listings then keep its latest run).
      ...this.startOptions(workflowInput, retryOf, workflowIdReusePolicy !== 'REJECT_DUPLICATE'),
      workflowId: ingestWorkflowId(workflowInput.request.tenant, workflowInput.jobId),
      workflowIdReusePolicy,
    });
    this.lastAcknowledgedAt = Date.now();
    this.recent.add(workflowInput, this.lastAcknowledgedAt);
    this.timeStep('start', starting);
    return handle;
  }

  /** Reports how long `step` took, from `since` until now, or until `done` succeeds; nothing when no one listens. */
  private timeStep(step: AcceptStep, since: number, done?: Promise<unknown>): void {
    const listener = this.onAcceptStep;
    if (!listener) return;
    const report = () => listener(step, (performance.now() - since) / 1000);
    if (done) done.then(report, () => undefined);
    else report();
  }

  private startOptions(workflowInput: IngestWorkflowInput, retryOf?: string, reusedId = false) {
    return {
      taskQueue: this.config.TEMPORAL_TASK_QUEUE,
      args: [workflowInput] as [IngestWorkflowInput],
      typedSearchAttributes: ingestJobAttributes(workflowInput.request),
      memo: JSON.parse(JSON.stringify({ ...jobMemo(workflowInput, retryOf), ...(reusedId ? { reused_id: true } : {}) })) as Record<string, unknown>,
    };
  }

  /** A tenant's jobs answered 2xx whose start is still being completed (startInBackground), newest first. */
  pendingStarts(tenant: string): Promise<PendingStart[]> {
    return this.pending.ofTenant(tenant);
  }

  /** A tenant's jobs this process started lately, which visibility may not list yet (RecentStarts). */
  recentStarts(tenant: string): IngestWorkflowInput[] {
    return this.recent.ofTenant(tenant);
  }

  /**
   * Removes what the jobs stored in the blob store — the upload or fetched page, the artifacts — once
   * their source is deleted: a retry or a re-extraction of them then has nothing to read.
   */
  async dropContent(tenant: string, jobIds: string[]): Promise<void> {
    await mapBounded(jobIds, 8, (jobId) => dropJobBlobs(this.blobs, tenant, jobId));
  }

  handle(tenant: string, jobId: string): WorkflowHandle {
    return this.lookup.handle(tenant, jobId);
  }

  /** See JobLookup.progress. */
  progress(tenant: string, jobId: string): Promise<JobProgress | undefined> {
    return this.lookup.progress(tenant, jobId);
  }

  progressOrThrow(tenant: string, jobId: string): Promise<JobProgress> {
    return this.lookup.progressOrThrow(tenant, jobId);
  }

  /** See JobLookup.runStatus. */
  runStatus(tenant: string, jobId: string): ReturnType<JobLookup['runStatus']> {
    return this.lookup.runStatus(tenant, jobId);
  }

  /** Compact summaries of finished jobs, by id; one round trip for a whole page of a listing. */
  storedSummaries(tenant: string, jobIds: string[]): Promise<Map<string, JobProgress>> {
    return this.lookup.storedSummaries(tenant, jobIds);
  }

  /**
   * Where each of several jobs stands, by id (those not found left out): a finished job's stored
   * summary (one read for all), else its workflow's answer, a few at a time. For listings of what the
   * jobs wrote (documents, sources), which show each one's last job.
   */
  async progressOfMany(tenant: string, jobIds: string[]): Promise<Map<string, JobProgress>> {
    const ids = [...new Set(jobIds)];
    const found = await this.storedSummaries(tenant, ids);
    const open = ids.filter((id) => !found.has(id));
    const asked = await mapBounded(open, 8, (id) => this.progress(tenant, id));
    open.forEach((id, i) => asked[i] && found.set(id, asked[i]!));
    return found;
  }

  /** Requests cancellation of a queued or running job; the workflow records it as cancelled. */
  async cancel(tenant: string, jobId: string): Promise<void> {
    const { handle, description } = await this.lookup.describe(tenant, jobId);
    if (description.status.name !== 'RUNNING') throw conflict(`job ${jobId} is ${description.status.name.toLowerCase()}, not running`);
    await handle.cancel();
  }

  /**
   * Starts a new job over the same stored input as a failed (or cancelled) one, or as one that
   * completed with part of its content left out (its errors say which): the retry does it all again,
   * rewriting the same memory ids.
   */
  async retry(tenant: string, jobId: string): Promise<StartedJob> {
    const { handle, description } = await this.lookup.describe(tenant, jobId);
    const closedBadly = ['FAILED', 'CANCELLED', 'TIMED_OUT', 'TERMINATED'].includes(description.status.name);
    const partial = description.status.name === 'COMPLETED' && isPartlyCompleted(await this.lookup.storedSummary(tenant, jobId));
    if (!closedBadly && !partial) {
      throw conflict(`only a failed, cancelled or partly completed job can be retried; job ${jobId} is ${description.status.name.toLowerCase()}`);
    }
    const original = await startInputOf(handle);
    // The retry's id derives from the job it retries: a second retry of the same job is refused (409
    // naming the first, whatever became of it). A retry that failed is retried in turn, as a job of its
    // own, so no id ever has two runs whose summaries could be confused.
    const retryId = this.derivedJobId(tenant, 'retry-of', jobId);
    const retried: IngestWorkflowInput = {
      ...original,
      jobId: retryId,
      createdAt: acceptanceTime(),
      // Relative dates count from the first acceptance, as the job retried would have.
      acceptedAt: original.acceptedAt ?? original.createdAt,
      // Turns are enriched again by the pipeline; stated memories have no pipeline, only their write.
      activeWrite: original.request.statedAs !== undefined,
      revision: INGEST_REVISION,
    };
    const workflowId = ingestWorkflowId(tenant, retried.jobId);
    await this.startRun(retried, 'REJECT_DUPLICATE', jobId)
      .catch((error) => {
        if (error instanceof WorkflowExecutionAlreadyStartedError) throw conflict(`job ${jobId} was already retried as job ${retryId}`);
        throw error;
      });
    return { jobId: retried.jobId, sourceId: retried.sourceId, workflowId, status: 'queued', createdAt: retried.createdAt };
  }
}
