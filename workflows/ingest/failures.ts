import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/workflow';

/**
 * What a workflow says when a stage or a child job failed: the activity's or the job's own failure
 * type and message, unwrapped (not "Child Workflow execution failed").
 */
export function failureReason(error: unknown): { code: string; message: string } {
  let cause: unknown = error;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { code: cause.type ?? 'error', message: cause.message };
  if (cause instanceof Error) return { code: cause.name, message: cause.message };
  return { code: 'error', message: String(cause) };
}

/**
 * An activity failure its own activity marked non-retryable (the input's fault), not one that ran out
 * of retries. A regular activity's failure arrives wrapped in an ActivityFailure, a local one's as is.
 */
export function refusedForGood(error: unknown): boolean {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure && failure.nonRetryable === true;
}
