/**
 * The task queue of the activities a caller waits on (Tex's active write), beside the job queue:
 * behind a backlog of extraction work on the job queue, such an activity waited for a free slot and
 * its turn, 1-11 s in a probe with 6-20 large documents queued. Every worker polls both. Safe to
 * import from workflow code.
 */
export const waitedOnTaskQueue = (jobTaskQueue: string) => `${jobTaskQueue}-waited-on`;

/**
 * The task queue of webhook deliveries, beside the job queue: a receiver that is down is retried for
 * days, and a flood of such retries (many subscriptions, many jobs) held every slot of the job queue,
 * where each ingest's regular stages then waited behind thousands of deliveries. Every worker polls it
 * with slots of its own. Safe to import from workflow code.
 */
export const webhookTaskQueue = (jobTaskQueue: string) => `${jobTaskQueue}-webhooks`;
