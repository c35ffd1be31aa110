import { ApplicationFailure } from '@temporalio/workflow';
import type { BatchRange } from '../../activities/types';
import type { JobProgress, Stage, StageProgress } from '../../lib/domain/job';

/** Runs one stage, keeping its state, timing and count in the queryable progress. */
export async function stage<T>(
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

/**
 * Adds a finished batch's count to a running stage's, so progress moves batch by batch through a
 * long stage (a large document's index stage is most of its run) rather than only when it ends.
 */
export function tally(progress: JobProgress, name: Stage, count: number): void {
  const state = progress.stages[name];
  if (state?.state !== 'running') return;
  state.count = (state.count ?? 0) + count;
  progress.updated_at = new Date().toISOString();
}

/**
 * The most batches one job runs. Each batch is an activity in each of three stages, and each activity
 * adds 3 to 6 events to the job's workflow history (4.7 measured), which Temporal ends, terminating
 * the job half indexed, at 51,200 events: 2,000 batches stay under 36,000 events at worst. At the
 * default 32 chunks a batch that is 64,000 chunks: a 5 MB text makes about 5,000, a 10 MB CSV of short
 * rows 50,000, a DOCX or PDF whose text unpacks large more.
 */
export const MAX_JOB_BATCHES = 2_000;

/** Fails the job, saying so, when its chunks would take more batches than one job's history can hold. */
export function assertWithinJobBatches(chunks: number, batchSize: number): void {
  if (Math.ceil(chunks / batchSize) <= MAX_JOB_BATCHES) return;
  throw ApplicationFailure.nonRetryable(
    `the content makes ${chunks} chunks, more than one job takes (${MAX_JOB_BATCHES * batchSize}: ${MAX_JOB_BATCHES} batches of ${batchSize}, kept within Temporal's workflow history limit): send it in parts`,
    'payload_too_large',
  );
}

/** A job's chunks in extract/index batches of `size`. */
export function batchRanges(total: number, size: number): BatchRange[] {
  const ranges: BatchRange[] = [];
  for (let start = 0, batch = 0; start < total; start += size, batch++) {
    ranges.push({ batch, start, end: Math.min(total, start + size) });
  }
  return ranges;
}

export const isDefined = <T>(value: T | undefined): value is T => value !== undefined;

export function sum<T>(items: T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
