import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineUpdate,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/registry';
import type { ActiveWriteResult } from '../activities/write-active';
import type { JobAnnouncement } from '../activities/record-job';
import type { BatchRange, ExtractResult, ResolveResult, StageInput } from '../activities/types';
import type { JobProgress } from '../lib/domain/job';
import { initialProgress, STAGE_ORDER } from '../lib/domain/initial-progress';
import { StatusAttribute } from '../lib/temporal/search-attributes';
import { waitedOnTaskQueue } from '../lib/temporal/task-queues';
import { mapBounded } from '../lib/map-bounded';
import {
  ACTIVE_WRITE_OPTIONS,
  chunkDocument,
  chunkSmall,
  completeJob,
  extractMemories,
  extractSettling,
  extractSmall,
  extractSmallFirst,
  fetchSource,
  handOverUpload,
  indexMemories,
  onceLocally,
  onceLocallySettling,
  parseSource,
  recordJobSummary,
  recordSource,
  resolveEntities,
  retireEarlierVersions,
  settling,
  SMALL_TEXT_CHARS,
  SMALL_UPLOAD_BYTES,
  tryLocally,
  writeActiveFragments,
} from './ingest/activities';
import { tell } from './ingest/announce';
import { failureReason, refusedForGood, untilStorageIsBack } from './ingest/failures';
import { assertWithinJobBatches, batchRanges, isDefined, stage, sum, tally } from './ingest/stages';

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

export async function ingestWorkflow(input: IngestWorkflowInput): Promise<JobProgress> {
  const progress = initialProgress(input, new Date().toISOString());
  setHandler(statusQuery, () => progress);
  const current = (input.revision ?? 0) >= 2; // see INGEST_REVISION
  const settles = (input.revision ?? 0) >= 4;
  const versioned = (input.revision ?? 0) >= 5 && input.versionAt !== undefined;
  const answersActiveFirst = (input.revision ?? 0) >= 6;
  const handsPassiveOver = input.activeWrite === true && (input.revision ?? 0) >= 7;
  const completesInOne = (input.revision ?? 0) >= 8;
  const waitsForStorage = (input.revision ?? 0) >= 9;
  const boundsBatches = (input.revision ?? 0) >= 9;
  const untilStored = <R>(run: () => Promise<R>) => (waitsForStorage ? () => untilStorageIsBack(run) : run);
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
        // The active write is the whole job: what it wrote is what the job created.
        progress.memories_created = progress.counts.memories = active.newTurns;
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
    const fetched = await stage(progress, 'fetch', untilStored(fetch), (r) => ({ count: r.bytes }));
    progress.counts.bytes = fetched.bytes;
    const localFirstStages = fetched.bytes <= SMALL_UPLOAD_BYTES && (current || patched('local-first-stages'));
    const parse = tryLocally(localFirstStages && onceLocally.parseSource, queued.parseSource);
    const parsed = await stage(progress, 'parse', untilStored(() => parse(input, fetched)), (r) => ({ count: r.characters }));
    progress.counts.characters = parsed.characters;
    // patched() (revision < 2): histories recorded before this change replay with the regular
    // activities they ran.
    const small = parsed.characters <= SMALL_TEXT_CHARS && (current || patched('local-small-stages'));
    const chunk = untilStored(() => (small ? chunkSmall : queued.chunkDocument)(input, parsed));
    const chunked = await stage(progress, 'chunk', async () => {
      const result = await chunk();
      if (boundsBatches) assertWithinJobBatches(result.chunks, input.batchSize);
      return result;
    }, (r) => ({ count: r.chunks }));
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
    const tallied = (result: ExtractResult) => (tally(progress, 'extract', result.memories), result);
    const extractedOrNot = await stage(progress, 'extract', async () => {
      const results = await mapBounded(batches, input.batchConcurrency, async (range) => {
        if (!partial) return tallied(await extract(input, parsed, chunked, range));
        try {
          return tallied(await extract(input, parsed, chunked, range));
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
    // The regular activity after a failed local try is a retry: that try may have written entities it did not heal.
    const resolveAfterLocalTry: typeof queued.resolveEntities = (stageInput, extracted, range) => queued.resolveEntities(stageInput, extracted, range, { afterLocalTry: true });
    const resolve = tryLocally(quick && locally.resolveEntities, quick ? resolveAfterLocalTry : queued.resolveEntities);
    const resolved = await stage(progress, 'resolve-entities', () =>
      mapBounded(kept, input.batchConcurrency, async ({ range, extracted }) => {
        const result = await resolve(input, extracted, range);
        tally(progress, 'resolve-entities', result.entities);
        return result;
      }, { settle: settles }),
    (results) => ({ count: sum(results, (r: ResolveResult) => r.entities) }));
    progress.counts.entities = sum(resolved, (r) => r.entities);
    const index = tryLocally(quick && locally.indexMemories, queued.indexMemories);
    // Counted batch by batch: a job cancelled part way knows what it indexed (and left searchable).
    const indexed = await stage(progress, 'index', () =>
      mapBounded(kept, input.batchConcurrency, async ({ range }, i) => {
        const result = await index(input, parsed, chunked, resolved[i]!, range);
        tally(progress, 'index', result.indexed);
        progress.counts.memories += result.indexed;
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
      if (settles) progress.memories_created = progress.counts.memories;
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
