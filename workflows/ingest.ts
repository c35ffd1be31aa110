import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineUpdate,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities/registry';
import type { ActiveWriteResult } from '../activities/write-active';
import type { JobAnnouncement } from '../activities/record-job';
import type { BatchRange, ExtractResult, ResolveResult, StageInput } from '../activities/types';
import type { JobProgress, Stage, StageProgress } from '../lib/domain/job';
import { initialProgress, STAGE_ORDER } from '../lib/domain/initial-progress';
import { JobKindAttribute, StatusAttribute, TenantAttribute } from '../lib/temporal/search-attributes';
import { waitedOnTaskQueue } from '../lib/temporal/task-queues';
import { mapBounded } from '../lib/map-bounded';
import { eventOfJob } from '../lib/domain/webhook-event';
import { webhookDeliveryWorkflow } from './webhooks';

export interface IngestWorkflowInput extends StageInput {
  /** Chunks per extract/index batch and how many batches run at once (bounded fan-out). */
  batchSize: number;
  batchConcurrency: number;
  createdAt: string;
  /** Tex writes: turns become searchable fragments through the `writeActive` update first. */
  activeWrite?: boolean;
  /** The workflow behaviour the job was started for: INGEST_REVISION at the time (see there). */
  revision?: number;
}

export const statusQuery = defineQuery<JobProgress>('status');
export const activeWriteUpdate = defineUpdate<ActiveWriteResult>('writeActive');

// Retry policies fit each stage's failure modes. Bad input is raised non-retryable by the activities,
// so these only ever retry transient faults: network, Elasticsearch down, model rate limits.
const { fetchSource } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6 },
});
const { parseSource, chunkDocument } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});
// Extraction retries until the model answers: a provider outage or rate limit holds the job, it does
// not fail it (content the model refuses is bad input, raised non-retryable by the extractor).
const { extractMemories } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
// Small inputs chunk and extract as local activities: the same work and retry policy, run by the
// worker that runs the workflow, without a task-queue round trip and two more workflow tasks each —
// server work that cost a small job more than chunking it. Large inputs stay regular activities,
// which heartbeat and spread over the workers.
const SMALL_TEXT_CHARS = 200_000;
const chunkSmall = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
}).chunkDocument;
// Before revision 4 (as those histories recorded it).
const extractSmall = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
}).extractMemories;
// Since revision 4: a few quick local tries, then the regular activity (localFirst), which waits out
// an outage without limit — a local activity retried for hours would grow the history with every try.
const extractSmallFirst = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}).extractMemories;
// Writes to Elasticsearch retry until the cluster is back: an accepted job is never dropped. A job
// held here (e.g. waiting for a reindex to a new embedding model) shows the reason as its pending
// activity's last failure; small jobs reach these only after their local try failed (localFirst).
const { resolveEntities, indexMemories } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
// Since revision 4 a cancelled job waits for its extraction and writes to stop (or finish) before it
// records what it indexed: nothing is written after it says "cancelled".
const settling = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const extractSettling = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}).extractMemories;
// A small job's parse, entity resolution and index try once as local activities — no task-queue round
// trips, no extra workflow tasks: most of the server work a small job caused. Any retryable failure
// hands the stage to its regular activity above, with its full retry policy and with the reason shown
// as the pending activity's last failure (a job held for a model reindex says why). Bad input still
// fails the job at once.
const SMALL_UPLOAD_BYTES = 256 * 1024;
const onceLocally = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
});
const onceLocallySettling = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/** The stage's regular activity, or, when `local` is given, that tried once locally first (localFirst). */
function tryLocally<A extends unknown[], R>(local: ((...args: A) => Promise<R>) | false, regular: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return local ? (...args: A) => localFirst(local, regular, ...args) : regular;
}

/** `local` first; on a retryable failure (or its timeout), the same stage as a regular activity. */
async function localFirst<A extends unknown[], R>(local: (...args: A) => Promise<R>, regular: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  try {
    return await local(...args);
  } catch (error) {
    if (isCancellation(error)) throw error;
    // A local run's failure arrives as the activity's own ApplicationFailure (a regular one's, wrapped).
    const failure = error instanceof ActivityFailure ? error.cause : error;
    if (failure instanceof ApplicationFailure && failure.nonRetryable) throw error;
    return regular(...args);
  }
}

// Millisecond work — handing over bytes the API already stored, recording the source and the job
// summary — runs as local activities: same retries, but no task-queue round trip through the server,
// which costs more than the work itself. (A URL fetch stays a regular activity: it heartbeats.)
const bookkeeping = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const { recordSource, recordJobSummary } = bookkeeping;
// A new version's cleanup: a search and conditional deletes, usually of one document's few memories;
// a large document's may take longer than bookkeeping (the SDK keeps the workflow task alive meanwhile).
// Since revision 8 a completed job's bookkeeping, that cleanup included, is one activity (completeJob).
const { retireEarlierVersions, completeJob } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const handOverUpload = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
}).fetchSource;

// The caller of an active write waits for it: a few quick attempts, then the update fails visibly.
const ACTIVE_WRITE_OPTIONS = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 5 },
} as const;
const { writeActiveFragments } = proxyActivities<Activities>(ACTIVE_WRITE_OPTIONS);

export async function ingestWorkflow(input: IngestWorkflowInput): Promise<JobProgress> {
  const progress = initialProgress(input, new Date().toISOString());
  setHandler(statusQuery, () => progress);
  const current = (input.revision ?? 0) >= 2; // see INGEST_REVISION
  const settles = (input.revision ?? 0) >= 4;
  const versioned = (input.revision ?? 0) >= 5 && input.versionAt !== undefined;
  const answersActiveFirst = (input.revision ?? 0) >= 6;
  const handsPassiveOver = input.activeWrite === true && (input.revision ?? 0) >= 7;
  const completesInOne = (input.revision ?? 0) >= 8;
  // Before revision 2 every job marked itself running at once; since, only a job that hands a stage
  // to the task queue does (just before it does).
  let markedRunning = false;
  const onQueue = <A extends unknown[], R>(activity: (...args: A) => Promise<R>) => (...args: A): Promise<R> => {
    if (!markedRunning) {
      markedRunning = true;
      markStatus('running');
    }
    return activity(...args);
  };
  const queued = {
    fetchSource: onQueue(fetchSource),
    parseSource: onQueue(parseSource),
    chunkDocument: onQueue(chunkDocument),
    extractMemories: onQueue(settles ? extractSettling : extractMemories),
    resolveEntities: onQueue(settles ? settling.resolveEntities : resolveEntities),
    indexMemories: onQueue(settles ? settling.indexMemories : indexMemories),
  };
  const locally = settles ? onceLocallySettling : onceLocally;

  // Tex's active tier: the update sent with the start writes the turns as searchable fragments and
  // answers with their ids; the passive pipeline below then enriches only the turns that were new.
  // Since revision 6 on the queue of waited-on activities, not behind the job queue's backlog.
  const writeFragments = answersActiveFirst
    ? proxyActivities<Activities>({ ...ACTIVE_WRITE_OPTIONS, taskQueue: waitedOnTaskQueue(workflowInfo().taskQueue) }).writeActiveFragments
    : writeActiveFragments;
  let activeWrite: Promise<ActiveWriteResult> | undefined;
  const writeActive = () => (activeWrite ??= onQueue(writeFragments)(input));
  let activeAnswered = false;
  setHandler(activeWriteUpdate, async () => {
    const result = await writeActive();
    // A re-sent write that joins this run is a no-op for its caller: nothing new, nothing billed.
    if (activeAnswered) return { fragmentIds: result.fragmentIds, newTurns: 0, tokensIn: 0 };
    activeAnswered = true;
    return result;
  });

  let indexedSoFar = 0;
  // Who to tell of the completed job, as completeJob answers (revision 8).
  let announcement: JobAnnouncement | undefined;
  try {
    progress.status = 'running';
    if (!current) {
      markedRunning = true;
      markStatus('running');
    }

    if (input.activeWrite) {
      const active = await writeActive();
      if (!active.passiveBlobKey || !input.request.writePassive) {
        for (const name of STAGE_ORDER) progress.stages[name] = { state: 'skipped' };
        progress.status = 'completed';
        await finish(progress);
        return progress;
      }
      input.request.blobKey = active.passiveBlobKey;
      // The update's answer leaves with the completion of the workflow task that produced it, and a
      // task that goes on into local stages completes only once they have run: a one-turn write's
      // caller would wait for its own enrichment. So this task ends first: in revision 6 with a 1 ms
      // timer, which the server fires no sooner than a second later (history.timerProcessorMaxTimeShift);
      // since revision 7 by handing the passive turns over as a regular activity, whose scheduling
      // ends the task at once.
      if (answersActiveFirst && !handsPassiveOver) await sleep(1);
    }

    const fetch = () => (!input.request.blobKey || handsPassiveOver ? queued.fetchSource(input) : handOverUpload(input));
    const fetched = await stage(progress, 'fetch', fetch, (r) => ({ count: r.bytes }));
    progress.counts.bytes = fetched.bytes;
    const localFirstStages = fetched.bytes <= SMALL_UPLOAD_BYTES && (current || patched('local-first-stages'));
    const parse = tryLocally(localFirstStages && onceLocally.parseSource, queued.parseSource);
    const parsed = await stage(progress, 'parse', () => parse(input, fetched), (r) => ({ count: r.characters }));
    progress.counts.characters = parsed.characters;
    // patched() (revision < 2): histories recorded before this change replay with the regular
    // activities they ran.
    const small = parsed.characters <= SMALL_TEXT_CHARS && (current || patched('local-small-stages'));
    const chunked = await stage(progress, 'chunk', () => (small ? chunkSmall : queued.chunkDocument)(input, parsed), (r) => ({ count: r.chunks }));
    progress.counts.chunks = chunked.chunks;

    const batches = batchRanges(chunked.chunks, input.batchSize);
    const oneSmallBatch = small && batches.length === 1;
    const extract = !oneSmallBatch ? queued.extractMemories : settles ? tryLocally(extractSmallFirst, queued.extractMemories) : extractSmall;
    // Since revision 3 a batch the extractor refuses for good (a non-retryable failure: that content,
    // not an outage) is left out and named in the job's errors, and the other batches go on: the job
    // completes with what it could extract (Synap's partial_success). Every batch refused fails the
    // job; a provider that is down is waited for (the retry policy above has no attempt limit).
    const partial = (input.revision ?? 0) >= 3 && batches.length > 1;
    const leftOut: { range: BatchRange; error: unknown }[] = [];
    const extractedOrNot = await stage(progress, 'extract', async () => {
      const results = await mapBounded(batches, input.batchConcurrency, async (range) => {
        if (!partial) return extract(input, parsed, chunked, range);
        try {
          return await extract(input, parsed, chunked, range);
        } catch (error) {
          if (!refusedForGood(error)) throw error;
          leftOut.push({ range, error });
          return undefined;
        }
      }, { settle: settles });
      if (leftOut.length === batches.length) throw leftOut[0]!.error;
      return results;
    }, (results) => ({ count: sum(results.filter(isDefined), (r: ExtractResult) => r.memories) }));
    for (const { range, error } of leftOut) {
      const reason = failureReason(error);
      progress.errors.push({ stage: 'extract', code: reason.code, message: `chunks ${range.start}–${range.end - 1} left out: ${reason.message}` });
    }
    const kept = batches.flatMap((range, i) => (extractedOrNot[i] ? [{ range, extracted: extractedOrNot[i] }] : []));
    const quick = oneSmallBatch && localFirstStages;
    const resolve = tryLocally(quick && locally.resolveEntities, queued.resolveEntities);
    const resolved = await stage(progress, 'resolve-entities', () =>
      mapBounded(kept, input.batchConcurrency, ({ range, extracted }) => resolve(input, extracted, range), { settle: settles }),
    (results) => ({ count: sum(results, (r: ResolveResult) => r.entities) }));
    progress.counts.entities = sum(resolved, (r) => r.entities);
    const index = tryLocally(quick && locally.indexMemories, queued.indexMemories);
    // Counted batch by batch: a job cancelled part way knows what it indexed (and left searchable).
    const indexed = await stage(progress, 'index', () =>
      mapBounded(kept, input.batchConcurrency, async ({ range }, i) => {
        const result = await index(input, parsed, chunked, resolved[i]!, range);
        indexedSoFar += result.indexed;
        return result;
      }, { settle: settles }),
    (results) => ({ count: sum(results, (r) => r.indexed) }));

    progress.memories_created = sum(indexed, (r) => r.indexed);
    progress.counts.memories = progress.memories_created;
    if (completesInOne) {
      progress.status = 'completed';
      ended(progress);
      // Its memories are all indexed: a cancellation arriving now would only race the summary it
      // writes, so the job completes.
      announcement = await CancellationScope.nonCancellable(() => completeJob(input, progress, { title: parsed.title }));
    } else {
      await recordSource(input, { title: parsed.title });
      // Since revision 5: a new version of a replaceable source replaces the earlier ones' memories.
      if (versioned) await retireEarlierVersions(input, { completed: true, title: parsed.title });
      progress.status = 'completed';
    }
  } catch (error) {
    if (isCancellation(error)) {
      progress.status = 'cancelled';
      // Its writes have stopped (settle): what it indexed stays searchable, and is counted as such —
      // unless a newer version of the source completed meanwhile, which makes them stale: they go.
      if (settles) progress.memories_created = progress.counts.memories = indexedSoFar;
      await CancellationScope.nonCancellable(async () => {
        if (versioned && (await retireEarlierVersions(input, { completed: false })) > 0) progress.memories_created = progress.counts.memories = 0;
        await finish(progress);
      });
      throw error;
    }
    // A failed older version's memories are stale once a newer one completed (as when it completes).
    if (versioned) await retireEarlierVersions(input, { completed: false });
    progress.status = 'failed';
    const reason = failureReason(error);
    progress.errors.push({ stage: progress.stage ?? 'workflow', code: reason.code, message: reason.message });
    await finish(progress);
    // Failing the execution makes the job show as Failed in the Temporal UI, with the same reason.
    throw ApplicationFailure.nonRetryable(reason.message, reason.code);
  }
  // Outside the try, as in finish(): a failure to announce does not rewrite the summary as failed.
  if (completesInOne) await tell(progress, announcement);
  else await finish(progress);
  return progress;

  function markStatus(status: JobProgress['status']) {
    upsertSearchAttributes([{ key: StatusAttribute, value: status }]);
  }

  /** Stamps the job's end and shows its status in visibility. */
  function ended(state: JobProgress) {
    state.finished_at = new Date().toISOString();
    state.updated_at = state.finished_at;
    markStatus(state.status);
  }

  async function finish(state: JobProgress) {
    ended(state);
    await tell(state, await recordJobSummary(state));
  }
}

/** Announces the job's end to the webhooks its summary's writer named (histories before webhooks have none, and replay without this step). */
async function tell(job: JobProgress, announcement: JobAnnouncement | undefined): Promise<void> {
  if (announcement?.webhooks.length) await announce(job, announcement.webhooks);
}

/**
 * Starts the deliveries of a job's end to the tenant's webhooks, as a child workflow the job does not
 * wait for (ABANDON: it outlives the job, retrying a receiver that is down for days). Its id derives
 * from the job's run (a job id can run again: a failed Synap document re-sent), so a replay or a
 * retried summary starts it once, and each run's end is its own event.
 */
async function announce(job: JobProgress, webhooks: string[]): Promise<void> {
  const event = eventOfJob(job.status);
  if (!event) return;
  const { runId } = workflowInfo();
  try {
    await startChild(webhookDeliveryWorkflow, {
      workflowId: `webhooks/${job.tenant}/${job.job_id}/${runId}`,
      args: [{ tenant: job.tenant, event, webhooks, job, runId }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: TenantAttribute, value: job.tenant },
        { key: JobKindAttribute, value: 'webhook' },
      ],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/** Runs one stage, keeping its state, timing and count in the queryable progress. */
async function stage<T>(
  progress: JobProgress,
  name: Stage,
  run: () => Promise<T>,
  summarise: (result: T) => Partial<StageProgress> = () => ({}),
): Promise<T> {
  const started = Date.now();
  progress.stage = name;
  progress.stages[name] = { state: 'running', started_at: new Date(started).toISOString() };
  progress.updated_at = progress.stages[name]!.started_at!;
  try {
    const result = await run();
    const finished = Date.now();
    progress.stages[name] = {
      ...progress.stages[name]!,
      ...summarise(result),
      state: 'completed',
      finished_at: new Date(finished).toISOString(),
      duration_ms: finished - started,
    };
    progress.updated_at = progress.stages[name]!.finished_at!;
    return result;
  } catch (error) {
    const finished = Date.now();
    progress.stages[name] = {
      ...progress.stages[name]!,
      state: 'failed',
      finished_at: new Date(finished).toISOString(),
      duration_ms: finished - started,
    };
    throw error;
  }
}

export function failureReason(error: unknown): { code: string; message: string } {
  let cause: unknown = error;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { code: cause.type ?? 'error', message: cause.message };
  if (cause instanceof Error) return { code: cause.name, message: cause.message };
  return { code: 'error', message: String(cause) };
}

export function batchRanges(total: number, size: number): BatchRange[] {
  const ranges: BatchRange[] = [];
  for (let start = 0, batch = 0; start < total; start += size, batch++) {
    ranges.push({ batch, start, end: Math.min(total, start + size) });
  }
  return ranges;
}

const isDefined = <T>(value: T | undefined): value is T => value !== undefined;

/** An activity failure its own activity marked non-retryable (the input's fault), not one that ran out of retries. */
function refusedForGood(error: unknown): boolean {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure && failure.nonRetryable === true;
}

function sum<T>(items: T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
