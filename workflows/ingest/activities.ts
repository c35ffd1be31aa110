import { ActivityCancellationType, isCancellation, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/registry';
import { refusedForGood } from './failures';

// The ingest workflow's activities as it calls them: each stage's timeouts and retry policy, and the
// local variants small jobs run without a task-queue round trip. Earlier revisions' options stay here
// as their histories recorded them (see INGEST_REVISION).

// Retry policies fit each stage's failure modes. Bad input is raised non-retryable by the activities,
// so these only ever retry transient faults: network, Elasticsearch down, model rate limits.

/** Until the service is back, however long: no attempt limit (an accepted job is never dropped). */
const UNTIL_BACK = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;
/** Entity resolution and indexing: Elasticsearch writes, heartbeating, retried until the cluster is back. */
const WRITES = { startToCloseTimeout: '5 minutes', heartbeatTimeout: '2 minutes', retry: UNTIL_BACK } as const;
export const { fetchSource } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6 },
});
export const { parseSource, chunkDocument } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});
// Extraction retries until the model answers: a provider outage or rate limit holds the job, it does
// not fail it (content the model refuses is bad input, raised non-retryable by the extractor).
export const { extractMemories } = proxyActivities<Activities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '2 minutes', retry: UNTIL_BACK });
// Small inputs chunk and extract as local activities: the same work and retry policy, run by the
// worker that runs the workflow, without a task-queue round trip and two more workflow tasks each —
// server work that cost a small job more than chunking it. Large inputs stay regular activities,
// which heartbeat and spread over the workers.
export const SMALL_TEXT_CHARS = 200_000;
export const chunkSmall = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
}).chunkDocument;
// Before revision 4 (as those histories recorded it).
export const extractSmall = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { ...UNTIL_BACK, maximumAttempts: 20 },
}).extractMemories;
// Since revision 4: a few quick local tries, then the regular activity (localFirst), which waits out
// an outage without limit — a local activity retried for hours would grow the history with every try.
export const extractSmallFirst = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}).extractMemories;
// Writes to Elasticsearch retry until the cluster is back: an accepted job is never dropped. A job
// held here (e.g. waiting for a reindex to a new embedding model) shows the reason as its pending
// activity's last failure; small jobs reach these only after their local try failed (localFirst).
export const { resolveEntities, indexMemories } = proxyActivities<Activities>(WRITES);
// Since revision 4 a cancelled job waits for its extraction and writes to stop (or finish) before it
// records what it indexed: nothing is written after it says "cancelled".
export const settling = proxyActivities<Activities>({ ...WRITES, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
export const extractSettling = proxyActivities<Activities>({
  ...WRITES,
  startToCloseTimeout: '10 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}).extractMemories;
// A small job's parse, entity resolution and index try once as local activities — no task-queue round
// trips, no extra workflow tasks: most of the server work a small job caused. Any retryable failure
// hands the stage to its regular activity above, with its full retry policy and with the reason shown
// as the pending activity's last failure (a job held for a model reindex says why). Bad input still
// fails the job at once.
export const SMALL_UPLOAD_BYTES = 256 * 1024;
export const onceLocally = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
});
export const onceLocallySettling = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/** The stage's regular activity, or, when `local` is given, that tried once locally first (localFirst). */
export function tryLocally<A extends unknown[], R>(local: ((...args: A) => Promise<R>) | false, regular: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return local ? (...args: A) => localFirst(local, regular, ...args) : regular;
}

/** `local` first; on a retryable failure (or its timeout), the same stage as a regular activity. */
async function localFirst<A extends unknown[], R>(local: (...args: A) => Promise<R>, regular: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  try {
    return await local(...args);
  } catch (error) {
    if (isCancellation(error)) throw error;
    if (refusedForGood(error)) throw error;
    return regular(...args);
  }
}

// Millisecond work — handing over bytes the API already stored, recording the source and the job
// summary — runs as local activities: same retries, but no task-queue round trip through the server,
// which costs more than the work itself. (A URL fetch stays a regular activity: it heartbeats.)
const bookkeeping = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  localRetryThreshold: '10 seconds',
  retry: UNTIL_BACK,
});
export const { recordSource, recordJobSummary } = bookkeeping;
// A new version's cleanup: a search and conditional deletes, usually of one document's few memories;
// a large document's may take longer than bookkeeping (the SDK keeps the workflow task alive meanwhile).
// Since revision 8 a completed job's bookkeeping, that cleanup included, is one activity (completeJob).
export const { retireEarlierVersions, completeJob } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  localRetryThreshold: '10 seconds',
  retry: UNTIL_BACK,
});
export const handOverUpload = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
}).fetchSource;

// The caller of an active write waits for it: a few quick attempts, then the update fails visibly.
export const ACTIVE_WRITE_OPTIONS = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 5 },
} as const;
export const { writeActiveFragments } = proxyActivities<Activities>(ACTIVE_WRITE_OPTIONS);
