import { randomBytes } from 'node:crypto';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Workflow, WorkflowIdReusePolicy } from '@temporalio/common';
import type { ActiveWriteResult } from '../activities/write-active';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { JOURNAL_MAX_CONTENT_BYTES, type AcceptJournal } from './accept-journal';
import { blobKeys, dropJobBlobs, type BlobStore } from './blob/store';
import { acceptanceTime } from './clock';
import type { Config } from './config';
import { assertWithinFormatLimit, IngestRequest, type IngestRequestInput } from './domain/ingest';
import { INGEST_REVISION } from './domain/ingest-revision';
import { isPartlyCompleted, type JobProgress } from './domain/job';
import { indexNames } from './elasticsearch/indices';
import { badInput, conflict } from './errors';
import { contentHash, ingestWorkflowId, newJobId, scopeKey, sha256, sourceId as deriveSourceId } from './ids';
import { startInputOf } from './job-status';
import type { Logger } from './logger';
import { mapBounded } from './map-bounded';
import { JobLookup } from './job-lookup';
import { PendingStarts, type PendingStart } from './pending-starts';
import { firstFulfilled, settlesWithin } from './promises';
import { ingestJobAttributes } from './temporal/search-attributes';

/** A fresh job is answered before its start is acknowledged only if Temporal acknowledged one this recently. */
const TEMPORAL_ANSWERING_MS = 10_000;

/** A recorded start that failed is tried again after this, doubling with each failure up to the cap. */
const FAILED_START_BACKOFF_MS = 10_000;
const FAILED_START_BACKOFF_CAP_MS = 2 * 60_000;

export interface StartedJob {
  jobId: string;
  sourceId: string;
  workflowId: string;
  status: 'queued';
  /** When the job was accepted: its created_at wherever it is read back. */
  createdAt: string;
}

export interface IngestContent {
  /** Raw bytes or text of the source; conversations are their normalised JSON. */
  content?: Uint8Array | string;
}

export interface StartOptions {
  /** A caller-derived job id (e.g. from a Synap document_id); random otherwise. */
  jobId?: string;
  sourceKey?: string;
  /** Refuse (409) when a job with this id exists and did not fail: Synap's duplicate document_id. */
  rejectDuplicate?: boolean;
  /** Which job this one retries, kept in the memo for listings. */
  retryOf?: string;
}

/** What listings show without a query per job: kept in the workflow memo at start. */
export interface JobMemo {
  surface: string;
  scope: IngestRequest['scope'];
  categories?: string[];
  source_url?: string;
  document_id?: string;
  file_name?: string;
  source_id: string;
  retry_of?: string;
}

/** What a job's workflow keeps in its memo; a job still being started is listed from the same fields. */
export function jobMemo(workflowInput: IngestWorkflowInput, retryOf?: string): JobMemo {
  const { request } = workflowInput;
  return {
    surface: request.surface,
    scope: request.scope,
    categories: request.categories,
    source_url: request.sourceUrl,
    document_id: request.documentId,
    file_name: request.fileName,
    source_id: workflowInput.sourceId,
    retry_of: retryOf,
  };
}

/** Whether a source is replaced by what is sent again under the same key (see StageInput.versionAt). */
const byteLengthOf = (content: Uint8Array | string) => (typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength);

function replaceableSource(request: IngestRequest, sourceKey: string, callerSourceKey?: string): boolean {
  return !callerSourceKey && request.format !== 'CONVERSATION' && (sourceKey.startsWith('doc:') || sourceKey.startsWith('url:'));
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
 * a job under a caller-derived id, which a re-send can join, flushes first: see prepare.) With the
 * API's acceptance journal, a fresh job is answered once it is flushed there instead, and both
 * complete in the background (startJournaled). Jobs are found and read through JobLookup
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
  /**
   * Recorded starts whose last attempt by this process's sweep failed (unreadable, or refused):
   * tried again once `nextAt` has passed, with a backoff that doubles, never dropped (each was
   * answered 2xx).
   */
  private readonly failingStarts = new Map<string, { attempts: number; nextAt: number }>();
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
      // Only a fresh job id overlaps the flush (prepare): nobody else can have joined its run.
      const acknowledged = this.whileFlushing(durable, starting, (handle) => handle.terminate('the content of the request could not be stored durably'));
      // Awaited below, or handed to startInBackground; meanwhile a failure is not an unhandled rejection.
      acknowledged.catch(() => undefined);
      // A fresh job whose start is slow is answered once it is recorded instead (startInBackground).
      // Only while Temporal is answering: with the server down, the caller is told so (503), not
      // handed a job that waits for it.
      const waitMs = this.config.ACCEPT_START_WAIT_MS;
      if (options.jobId || waitMs === 0 || Date.now() - this.lastAcknowledgedAt > TEMPORAL_ANSWERING_MS) await acknowledged;
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
    await this.completeRecordedStart(workflowInput.jobId, this.startRun(workflowInput, 'REJECT_DUPLICATE'));
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
    const settled = this.completeRecordedStart(jobId, acknowledged, recorded)
      .then(
        () => undefined,
        (error) => this.log?.warn({ err: error, job_id: jobId }, 'the start of an accepted job failed; the next sweep retries it'),
      )
      .finally(() => this.inFlight.delete(workflowId));
    this.inFlight.set(workflowId, settled);
    if (kept.status === 'fulfilled' && kept.value === 'recorded') this.acceptedEarly += 1;
  }

  /**
   * Once a recorded job's start settles: started, or found started already (by a sweep, or by a start
   * whose record outlived it), the record goes — after its own write has settled, when it is still
   * being written; any other failure leaves it for the next sweep and is thrown. Answers whether this
   * start was the one that started the job.
   */
  private async completeRecordedStart(jobId: string, start: Promise<unknown>, recorded?: Promise<void>): Promise<boolean> {
    const started = await start.then(
      () => true,
      (error) => {
        if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
        throw error;
      },
    );
    await recorded?.catch(() => undefined);
    await this.pending.remove(jobId);
    return started;
  }

  /** For the API's metrics: jobs answered before their start was acknowledged, and starts still completing. */
  startStats(): { acceptedEarly: number; completing: number; failing: number } {
    return { acceptedEarly: this.acceptedEarly, completing: this.inFlight.size, failing: this.failingStarts.size };
  }

  /**
   * Starts the jobs whose start was recorded (startInBackground) or journaled (startJournaled, its
   * upload written first) at least `olderThanMs` ago and is not still under way in this process:
   * those of a process that stopped before Temporal acknowledged them, or whose start failed. Run by the API at start-up and then periodically; any
   * number of API processes may sweep the same store, since a second start of a job is refused. One
   * job's record that cannot be read or started is logged and holds back no other; it is tried again
   * after 10 s, then 20 s, 40 s… up to 2 min between attempts (after an outage of Temporal, its
   * records start within 2 min of its return). Returns how many jobs it started.
   */
  async resumePendingStarts(olderThanMs = 30_000, now = Date.now()): Promise<number> {
    let resumed = 0;
    const jobIds = await this.pending.jobIds();
    const recorded = new Set(jobIds);
    for (const jobId of this.failingStarts.keys()) if (!recorded.has(jobId)) this.failingStarts.delete(jobId);
    for (const jobId of jobIds) {
      const failing = this.failingStarts.get(jobId);
      // A second of slack: sweeps come every 10 s, so a retry due then is not put off to the next one.
      if (failing && failing.nextAt > now + 1_000) continue;
      try {
        const record = await this.pending.read(jobId);
        if (!record || now - Date.parse(record.recordedAt) < olderThanMs) continue;
        const { workflowInput } = record;
        if (this.inFlight.has(ingestWorkflowId(workflowInput.request.tenant, jobId))) {
          this.failingStarts.delete(jobId);
          continue;
        }
        // A journaled job's upload may not have reached the blob store (or its flush, a power cut).
        if (record.content && workflowInput.request.blobKey) await this.blobs.put(workflowInput.request.blobKey, record.content);
        if (await this.completeRecordedStart(jobId, this.startRun(workflowInput, 'REJECT_DUPLICATE'))) resumed += 1;
        this.failingStarts.delete(jobId);
      } catch (error) {
        const attempts = (failing?.attempts ?? 0) + 1;
        const backoffMs = Math.min(FAILED_START_BACKOFF_MS * 2 ** (attempts - 1), FAILED_START_BACKOFF_CAP_MS);
        this.failingStarts.set(jobId, { attempts, nextAt: now + backoffMs });
        this.log?.error({ err: error, job_id: jobId, attempts, retry_in_s: backoffMs / 1000 }, 'could not start an accepted job from its record; a later sweep tries again');
      }
    }
    return resumed;
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
      ...this.startOptions(workflowInput),
      workflowId,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    // The job id is derived (options.jobId): the upload was flushed before this start (prepare).
    await durable;
    const active = await this.temporal.workflow.executeUpdateWithStart<Workflow, ActiveWriteResult, []>('writeActive', {
      startWorkflowOperation: operation,
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

  /** With `journaled`, the upload is not written: it is handed back, to be journaled (startJournaled). */
  private async prepare(input: IngestRequestInput & IngestContent, options: StartOptions, journaled = false) {
    const { content, ...fields } = input;
    const parsed = IngestRequest.safeParse(fields);
    if (!parsed.success) throw badInput(`invalid ingest request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const request = parsed.data;
    const jobId = options.jobId ?? newJobId();
    if (content !== undefined && request.format !== 'URL') {
      // Refused now, not accepted and failed in the parse stage: the job would only say so later.
      assertWithinFormatLimit(request.format, byteLengthOf(content));
    }
    let durable = Promise.resolve();
    let upload: { key: string; content: Buffer } | undefined;
    if (content !== undefined) {
      // A caller-derived job id can be sent twice: each request gets its own blob, so a refused or
      // joined duplicate never overwrites the content a running job reads.
      const key = options.jobId ? `${blobKeys.upload(request.tenant, jobId)}-${randomBytes(6).toString('hex')}` : blobKeys.upload(request.tenant, jobId);
      if (journaled) {
        upload = { key, content: typeof content === 'string' ? Buffer.from(content) : Buffer.from(content.buffer, content.byteOffset, content.byteLength) };
      } else if (options.jobId) {
        // Flushed before the start: a caller that re-sends after a lost answer is told its job exists
        // (409) or joins it, so a run under a derived id must never exist without durable content.
        await this.blobs.put(key, content);
      } else {
        // A fresh id: the flush runs beside the start (whileFlushing). A re-send after a lost answer is
        // a new job, so a run whose content a power cut took fails alone, never answered 2xx.
        const writing = performance.now();
        ({ durable } = await this.blobs.write(key, content));
        this.timeStep('upload_write', writing);
        this.timeStep('upload_flush', performance.now(), durable);
      }
      request.blobKey = key;
    }
    if (!request.blobKey && !request.sourceUrl) throw badInput('either content or a source URL is required');
    // A source is the caller's document id when given (unique in the tenant), else what was sent (the
    // URL when only a URL was, else the content's hash — a file kept with the URL it came from is its
    // content) where it was sent: the same text from two users or spaces is two sources, so
    // neither job rewrites the other's memories into its own scope.
    const scope = scopeKey(request.scope);
    const sourceKey =
      options.sourceKey ??
      (request.documentId
        ? `doc:${request.documentId}`
        : request.sourceUrl && content === undefined
          ? `url:${scope}${request.sourceUrl}`
          : `hash:${contentHash(content ?? '', scope)}`);
    const createdAt = acceptanceTime();
    const workflowInput: IngestWorkflowInput = {
      jobId,
      sourceId: deriveSourceId(request.tenant, sourceKey),
      request,
      batchSize: this.config.BATCH_SIZE,
      batchConcurrency: this.config.BATCH_CONCURRENCY,
      createdAt,
      revision: INGEST_REVISION,
      // A document sent again under its id, a URL ingested again: a new version of the same source,
      // whose memories replace the earlier version's. (A conversation re-sent is not: surfaces differ
      // on whether it adds turns or restates them, and supermemory's keeps its own ledger.)
      versionAt: replaceableSource(request, sourceKey, options.sourceKey) ? createdAt : undefined,
    };
    return { workflowInput, workflowId: ingestWorkflowId(request.tenant, jobId), durable, upload };
  }

  /** Starts a job's ingest workflow; an acknowledged start tells this process Temporal is answering. */
  private async startRun(workflowInput: IngestWorkflowInput, workflowIdReusePolicy: WorkflowIdReusePolicy | undefined, retryOf?: string): Promise<WorkflowHandle> {
    const starting = performance.now();
    const handle = await this.temporal.workflow.start('ingestWorkflow', {
      ...this.startOptions(workflowInput, retryOf),
      workflowId: ingestWorkflowId(workflowInput.request.tenant, workflowInput.jobId),
      workflowIdReusePolicy,
    });
    this.lastAcknowledgedAt = Date.now();
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

  private startOptions(workflowInput: IngestWorkflowInput, retryOf?: string) {
    return {
      taskQueue: this.config.TEMPORAL_TASK_QUEUE,
      args: [workflowInput] as [IngestWorkflowInput],
      typedSearchAttributes: ingestJobAttributes(workflowInput.request),
      memo: JSON.parse(JSON.stringify(jobMemo(workflowInput, retryOf))) as Record<string, unknown>,
    };
  }

  /** A tenant's jobs answered 2xx whose start is still being completed (startInBackground), newest first. */
  pendingStarts(tenant: string): Promise<PendingStart[]> {
    return this.pending.ofTenant(tenant);
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
      activeWrite: false,
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
