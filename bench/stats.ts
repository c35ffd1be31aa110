import { STAGES, type JobProgress, type Stage } from '../lib/domain/job';

/** The value rounded to `digits` decimals. */
export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The q-quantile (0 < q ≤ 1) of ascending values, by the nearest rank, to 0.1; 0 for none. */
export const quantile = (sorted: number[], q: number) => Number((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0).toFixed(1));

/** Each stage's mean duration over the jobs (ms, to 0.1): wall times of jobs that may have run side by side. */
export const meanStageMs = (progresses: JobProgress[]): Record<Stage, number> =>
  Object.fromEntries(
    STAGES.map((stage) => [stage, round(progresses.reduce((n, progress) => n + (progress.stages[stage]?.duration_ms ?? 0), 0) / progresses.length, 1)]),
  ) as Record<Stage, number>;
