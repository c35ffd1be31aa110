import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, sleep } from '@temporalio/workflow';
import { STORAGE_UNAVAILABLE } from '../../lib/errors';

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

/** A stage that Cairn's storage stopped (its disk full or unwritable) once its retries ran out. */
function failedForStorage(error: unknown): boolean {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure && failure.type === STORAGE_UNAVAILABLE;
}

/**
 * Runs a stage again, after a wait (10 s, doubling to 10 min), for as long as the disk stays full or
 * unwritable: an accepted job waits for its storage as it waits for Elasticsearch. The stages whose
 * own retries are few (fetch, parse, chunk: a parser that hangs or takes its worker down must not
 * run forever) would otherwise fail the job within seconds of a disk filling up.
 */
export async function untilStorageIsBack<R>(run: () => Promise<R>): Promise<R> {
  for (let waitMs = 10_000; ; waitMs = Math.min(waitMs * 2, 600_000)) {
    try {
      return await run();
    } catch (error) {
      if (!failedForStorage(error)) throw error;
      await sleep(waitMs);
    }
  }
}
