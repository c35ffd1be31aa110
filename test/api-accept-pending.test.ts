import fs from 'node:fs';
import path from 'node:path';
import { JobListings } from '../lib/job-listing';
import { visibilityQuery } from '../lib/temporal/visibility-query';
import { IngestJobs } from '../lib/jobs';
import { ApiMetrics } from '../lib/metrics';
import { gatedClient } from './support/gated-client';
import { startHarness, type Harness } from './support/harness';

/**
 * Acceptance does not wait for Temporal's slowest starts: a fresh job whose start is not acknowledged
 * within ACCEPT_START_WAIT_MS is answered once its start is recorded on stable storage, and the start
 * completes in the background; a process that stops first leaves the record, and a sweep starts the
 * job. Temporal's starts are held or dropped here by a client interceptor in front of the real server.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

const document = (content: string) => ({ tenant: 'acme', kind: 'document' as const, format: 'TXT' as const, content });

/**
 * An API process whose starts the test holds or drops, after Temporal has acknowledged one of them
 * (only then is a slow start answered early). `first` is that job, to wait for at the end.
 */
async function slowProcess() {
  const gated = gatedClient(h);
  const jobs = new IngestJobs(gated.client, h.runtime.blobs, { ...h.config, ACCEPT_START_WAIT_MS: 20 }, h.runtime.es);
  const first = await jobs.start(document(`A warm-up note, number ${Math.random()}.`));
  return { gated, jobs, first };
}

/** Starts a job of `text` and checks it is not answered 300 ms on (well past ACCEPT_START_WAIT_MS); `starting` is its answer to come. */
async function stillUnanswered(jobs: IngestJobs, text: string) {
  let answered = false;
  const starting = jobs.start(document(text)).then((job) => ((answered = true), job));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(answered).toBe(false);
  return { starting };
}

/** Another API process on the same blob store and Temporal (a replica, or the next one after a stop). */
const anotherProcess = (client = h.temporal.client) => new IngestJobs(client, h.runtime.blobs, h.config, h.runtime.es);

const recordOf = (jobId: string) => path.join(h.config.blobDir, '_cairn', 'pending-starts', `${jobId}.json`);

describe('acceptance with a slow workflow start', () => {
  it('answers once the start is recorded, reads the job as queued meanwhile, and runs it when Temporal acknowledges', async () => {
    const { gated, jobs, first } = await slowProcess();
    gated.hold();
    const accepted = await jobs.start(document('The heron nests by the weir every spring.'));
    // Answered while the start is held: the record and the upload are on disk.
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(true);
    const metrics = await new ApiMetrics(jobs).registry.metrics();
    expect(metrics).toMatch(/^cairn_ingest_accepted_before_start_total 1$/m);
    expect(metrics).toMatch(/^cairn_ingest_starts_completing 1$/m);
    expect(await jobs.progress('acme', accepted.jobId)).toMatchObject({ job_id: accepted.jobId, status: 'queued', source_id: accepted.sourceId });
    expect(await jobs.progress('globex', accepted.jobId)).toBeUndefined();
    // Another API process cannot cancel a job it cannot see started yet: a 409 to try again, not a 404.
    const other = anotherProcess();
    await expect(other.cancel('acme', accepted.jobId)).rejects.toMatchObject({ code: 'conflict' });
    await expect(other.cancel('globex', accepted.jobId)).rejects.toMatchObject({ code: 'not_found' });
    expect(await other.progress('acme', accepted.jobId)).toMatchObject({ status: 'queued' });

    gated.release();
    await jobs.drain();
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(false);
    expect(await h.waitForJob('acme', accepted.jobId)).toMatchObject({ status: 'completed', memories_created: 1 });
    // A sweep finds nothing left to start.
    expect(await other.resumePendingStarts(0)).toBe(0);
    await h.waitForJob('acme', first.jobId);
  });

  it('starts, from its record, a job whose process stopped before Temporal had its start', async () => {
    // Three jobs started as usual, seen by visibility (eventually consistent) before the slow one.
    const listings = new JobListings(h.temporal.client, h.jobs, h.config.TEMPORAL_NAMESPACE, h.config.TEMPORAL_TASK_QUEUE);
    const listedAtLeast = async (count: number) => {
      for (let tries = 0; (await listings.count('acme', {})) < count && tries < 40; tries++) await new Promise((resolve) => setTimeout(resolve, 250));
      expect(await listings.count('acme', {})).toBeGreaterThanOrEqual(count);
    };
    const before = await listings.count('acme', {});
    const usual = await Promise.all([1, 2, 3].map((n) => h.jobs.start(document(`Usual note number ${n}, ${Math.random()}.`))));
    const { gated, jobs, first } = await slowProcess();
    await listedAtLeast(before + usual.length + 1);
    gated.drop();
    const accepted = await jobs.start(document('The lighthouse keeper retired in 1998.'));
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(true);
    await expect(h.jobs.handle('acme', accepted.jobId).describe()).rejects.toThrow(/not found/i);

    // Listed meanwhile, as the newest job, where its filters match: queued, with what it was sent as.
    const ids = (listing: { body: { jobs: { job_id: string }[] } }) => listing.body.jobs.map((job) => job.job_id);
    const listed = await h.api('GET', '/v1/jobs?page_size=3');
    expect(listed.body.jobs).toHaveLength(3);
    expect(listed.body.jobs[0]).toMatchObject({ job_id: accepted.jobId, status: 'queued', kind: 'document', format: 'TXT', created_at: accepted.createdAt, source_id: accepted.sourceId });
    expect(ids(await h.api('GET', '/v1/jobs?status=queued&format=TXT&kind=document'))).toContain(accepted.jobId);
    expect(ids(await h.api('GET', '/v1/jobs?status=completed'))).not.toContain(accepted.jobId);
    expect(ids(await h.api('GET', '/v1/jobs?format=PDF'))).not.toContain(accepted.jobId);
    expect(ids(await h.api('GET', '/v1/jobs?page_size=3', { key: h.keys.globex }))).not.toContain(accepted.jobId);
    // Numbered pages (Memsolus') count it, and the second page goes on where the first left off.
    const started = (await listings.page('acme', {}, 10)).jobs.filter((job) => job.job_id !== accepted.jobId).map((job) => job.job_id);
    const [one, two] = [await listings.pageByNumber('acme', {}, 1, 3), await listings.pageByNumber('acme', {}, 2, 3)];
    expect(one.jobs.map((job) => job.job_id)).toEqual([accepted.jobId, ...started.slice(0, 2)]);
    expect(two.jobs.map((job) => job.job_id)).toEqual(started.slice(2, 5));
    expect((await listings.pageByNumber('acme', {}, 1, 1)).jobs.map((job) => job.job_id)).toEqual([accepted.jobId]);
    expect((await listings.pageByNumber('acme', {}, 2, 1)).jobs.map((job) => job.job_id)).toEqual(started.slice(0, 1));
    const visible = await h.temporal.client.workflowService.countWorkflowExecutions({ namespace: h.config.TEMPORAL_NAMESPACE, query: visibilityQuery('acme', {}, h.config.TEMPORAL_TASK_QUEUE) });
    expect(one.total).toBe(Number(visible.count) + 1);
    expect(await listings.count('acme', { status: 'queued', format: 'TXT' })).toBeGreaterThanOrEqual(1);

    // The next API process sweeps: a record younger than the sweep's age is another process's start
    // still under way, and is left alone; an older one is started.
    const next = anotherProcess();
    expect(await next.resumePendingStarts(60_000)).toBe(0);
    expect(await next.resumePendingStarts(0)).toBe(1);
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(false);
    const done = await h.waitForJob('acme', accepted.jobId);
    expect(done).toMatchObject({ job_id: accepted.jobId, status: 'completed', memories_created: 1, created_at: accepted.createdAt });
    expect(ids(await h.api('GET', '/v1/jobs?page_size=50')).filter((id) => id === accepted.jobId)).toHaveLength(1);
    await Promise.all(usual.map((job) => h.waitForJob('acme', job.jobId)));
    const hits = await h.api('POST', '/v1/search', { body: { query: 'lighthouse keeper retired', mode: 'bm25', top_k: 20 } });
    expect(hits.body.results.some((hit: { provenance: { job_id: string } }) => hit.provenance.job_id === accepted.jobId)).toBe(true);
    await h.waitForJob('acme', first.jobId);
  });

  it('never runs a job twice: a start that lands after a sweep started the job is refused', async () => {
    const { gated, jobs, first } = await slowProcess();
    gated.hold();
    const accepted = await jobs.start(document('The harbour master keeps a logbook of every ship.'));
    expect(await anotherProcess().resumePendingStarts(0)).toBe(1);
    expect((await h.waitForJob('acme', accepted.jobId)).status).toBe('completed');
    const { runId } = await h.jobs.handle('acme', accepted.jobId).describe();

    // The first process's start reaches the server only now: the job has run, so it is not run again.
    gated.release();
    await jobs.drain();
    const after = await h.jobs.handle('acme', accepted.jobId).describe();
    expect(after.runId).toBe(runId);
    expect(after.status.name).toBe('COMPLETED');
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(false);
    await h.waitForJob('acme', first.jobId);
  });

  it('a job whose record cannot be read or whose start keeps failing holds back no other in the sweep, and is tried again with a backoff', async () => {
    const { gated, jobs, first } = await slowProcess();
    gated.drop();
    const refusedJob = await jobs.start(document('The bridge was built in 1966.'));
    const other = await jobs.start(document('The market sells fish before dawn.'));
    const unreadable = recordOf('00000000-0000-4000-8000-0000000000ff');
    fs.writeFileSync(unreadable, '{"workflowInput": ');

    const refusingClient = gatedClient(h, new Set([refusedJob.workflowId]));
    const refusing = anotherProcess(refusingClient.client);
    const now = Date.now();
    expect(await refusing.resumePendingStarts(0, now)).toBe(1);
    expect(refusingClient.refusals()).toBe(1);
    expect(fs.existsSync(recordOf(refusedJob.jobId))).toBe(true);
    expect(fs.existsSync(recordOf(other.jobId))).toBe(false);
    expect((await h.waitForJob('acme', other.jobId)).status).toBe('completed');
    // The two that failed are tried again after 10 s, then 20 s more: not at every sweep.
    expect(refusing.startStats().failing).toBe(2);
    expect(await new ApiMetrics(refusing).registry.metrics()).toMatch(/^cairn_ingest_starts_failing 2$/m);
    expect(await refusing.resumePendingStarts(0, now + 5_000)).toBe(0);
    expect(refusingClient.refusals()).toBe(1);
    expect(await refusing.resumePendingStarts(0, now + 11_000)).toBe(0);
    expect(refusingClient.refusals()).toBe(2);
    expect(await refusing.resumePendingStarts(0, now + 25_000)).toBe(0);
    expect(refusingClient.refusals()).toBe(2);
    expect(await refusing.resumePendingStarts(0, now + 32_000)).toBe(0);
    expect(refusingClient.refusals()).toBe(3);
    // Still queued, and started by the next sweep that can.
    expect(await refusing.progress('acme', refusedJob.jobId)).toMatchObject({ status: 'queued' });
    expect(await anotherProcess().resumePendingStarts(0)).toBe(1);
    expect((await h.waitForJob('acme', refusedJob.jobId)).status).toBe('completed');
    expect(fs.existsSync(unreadable)).toBe(true);
    fs.rmSync(unreadable);
    // What is no longer recorded is no longer counted as failing.
    await refusing.resumePendingStarts(0, now + 60_000);
    expect(refusing.startStats().failing).toBe(0);
    await h.waitForJob('acme', first.jobId);
  });

  it('answers as soon as the start is acknowledged when its record is still being written, and leaves no record behind', async () => {
    // The blob store as a busy disk makes it: a record's write waits until the test lets it finish.
    let finishRecord = () => undefined as void;
    const recordHeld = new Promise<void>((resolve) => (finishRecord = resolve));
    let recordWritten: Promise<void> | undefined;
    const slowRecords = Object.create(h.runtime.blobs) as typeof h.runtime.blobs;
    slowRecords.put = (key, data) => {
      if (!key.startsWith('_cairn/pending-starts/')) return h.runtime.blobs.put(key, data);
      recordWritten = recordHeld.then(() => h.runtime.blobs.put(key, data));
      return recordWritten;
    };
    const gated = gatedClient(h);
    const jobs = new IngestJobs(gated.client, slowRecords, { ...h.config, ACCEPT_START_WAIT_MS: 20 }, h.runtime.es);
    const first = await jobs.start(document(`A warm-up note, number ${Math.random()}.`));
    gated.hold();
    // Past the start's wait: neither the record nor the start is there yet, so no answer.
    const { starting } = await stillUnanswered(jobs, 'The ferry crosses the estuary every half hour.');
    // Temporal acknowledges first: the job is safe, so the caller is answered without the record.
    gated.release();
    const accepted = await starting;
    expect(jobs.startStats().acceptedEarly).toBe(0);
    expect(await h.jobs.handle('acme', accepted.jobId).describe()).toMatchObject({ workflowId: accepted.workflowId });
    // The record lands afterwards and is removed then, not left for a sweep to find.
    finishRecord();
    await recordWritten;
    await jobs.drain();
    expect(fs.existsSync(recordOf(accepted.jobId))).toBe(false);
    expect(await anotherProcess().resumePendingStarts(0)).toBe(0);
    expect((await h.waitForJob('acme', accepted.jobId)).status).toBe('completed');
    await h.waitForJob('acme', first.jobId);
  });

  it('waits for the start as before while Temporal has not answered this process', async () => {
    const gated = gatedClient(h);
    const jobs = new IngestJobs(gated.client, h.runtime.blobs, { ...h.config, ACCEPT_START_WAIT_MS: 20 }, h.runtime.es);
    gated.hold();
    const { starting } = await stillUnanswered(jobs, 'The tram climbs the hill to the castle.');
    gated.release();
    await h.waitForJob('acme', (await starting).jobId);
  });
});
