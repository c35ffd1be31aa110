/**
 * Only the first errors are kept: progress travels in every query answer and continue-as-new.
 * In its own module because workflow code needs it: Temporal evaluates a workflow's imports again
 * for every run, and lib/backfill/request.ts brings zod schemas and chrono-node (~20 ms a run).
 */
export const MAX_KEPT_ERRORS = 20;
