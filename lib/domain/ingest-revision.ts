/**
 * The ingest workflow's behaviour revision, carried in each job's input by whoever starts it, so the
 * workflow can change behaviour for new jobs without a patch marker (and the TemporalChangeVersion
 * upsert each one costs). Histories started without a revision replay with the patch checks they
 * recorded.
 *
 * 2: small inputs take the local stages without patch markers, and a job only marks itself running in
 *    visibility once it hands a stage to the task queue (a job that ends in its first workflow task is
 *    never seen running there: the upsert would land with its completion).
 * 3: a job of several batches leaves out a batch whose extraction fails for good, names it in its
 *    errors and completes with the rest (failed only when every batch fails).
 * 4: a cancelled job waits for the extraction, entity and index work it has in flight to stop (writes
 *    check for the cancellation first), and counts the memories it did index, so a cancelled job's
 *    memories_created says what stays searchable and nothing is written after it reports cancelled;
 *    a small job's extraction tries locally a few times, then as a regular activity that waits out an
 *    outage without limit (local retries would grow the history with every try).
 * 5: a completed job of a replaceable source (versionAt set: a document under the caller's id, a URL)
 *    retires the memories of the source's other versions: an older version's, or its own when a newer
 *    version completed first (retireEarlierVersions, after recordSource).
 * 6: a Tex write answers its caller as soon as its active fragments are written: the write runs on
 *    the queue of waited-on activities (lib/temporal/task-queues.ts), not behind the job queue's
 *    backlog, and the workflow task that completes the writeActive update ends (a 1 ms timer) before
 *    the passive stages start, which as local activities would otherwise hold that task, and the
 *    answer, until they had run.
 * 7: that task ends by handing the passive turns over as a regular activity instead of the timer, which
 *    the server fires no sooner than a second after it is set: a Tex write's enrichment starts at once.
 * 8: a completed job records its source, retires a replaceable source's other versions and writes its
 *    summary in one local activity (completeJob) instead of three, each with its own activation and
 *    marker; a job that fails or is cancelled still writes its summary alone.
 * 9: a fetch, parse or chunk stage that Cairn's storage stopped (its disk full or unwritable) once its
 *    few retries ran out is run again after a wait, for as long as it takes, instead of failing the job;
 *    a job whose chunks take more than MAX_JOB_BATCHES batches fails at its chunk stage saying so,
 *    before Temporal's history limit would terminate it half indexed.
 */
export const INGEST_REVISION = 9;
