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
