/**
 * The task queue of the activities a caller waits on (Tex's active write), beside the job queue:
 * behind a backlog of extraction work on the job queue, such an activity waited for a free slot and
 * its turn, 1-11 s in a probe with 6-20 large documents queued. Every worker polls both. Safe to
 * import from workflow code.
 */
export const waitedOnTaskQueue = (jobTaskQueue: string) => `${jobTaskQueue}-waited-on`;
