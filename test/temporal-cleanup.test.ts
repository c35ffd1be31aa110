import { blobKeys, isDerivedArtifact, type BlobStore } from '../lib/blob/store';
import { startInputOf } from '../lib/job-status';
import { ArtifactSweep } from '../lib/temporal/artifact-sweep';
import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

describe('cleaning up after workflows: a throw-away task queue’s (benches and test runs), a terminated job’s artifacts', () => {
  let h: Harness;
  /** Jobs sent with metadata {test: 'held'} wait in extraction (their text parsed and chunked) until released. */
  const extracting = new Set<string>();
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  /** Runs that reached extraction with metadata {test: 'held-again'}, by job; the second waits there until `releaseAgain`. */
  const arrivals = new Map<string, number>();
  let releaseAgain: () => void = () => undefined;
  const releasedAgain = new Promise<void>((resolve) => (releaseAgain = resolve));
  let close: () => void = () => undefined;
  const closing = new Promise<void>((resolve) => (close = resolve));
  beforeAll(async () => {
    h = await startHarness({
      tenants: ['cleanup'],
      wrapActivities: (activities) => ({
        ...activities,
        extractMemories: async (input, ...rest) => {
          if (input.request.metadata?.test === 'held') {
            extracting.add(input.jobId);
            await released;
          }
          if (input.request.metadata?.test === 'held-again') {
            const arrival = (arrivals.get(input.jobId) ?? 0) + 1;
            arrivals.set(input.jobId, arrival);
            // The terminated run's extraction, a local activity, stays held: released, the rest of its
            // run would go on in the worker until its next workflow task found it terminated.
            await (arrival === 1 ? closing : releasedAgain);
          }
          return activities.extractMemories(input, ...rest);
        },
      }),
    });
  });
  afterAll(async () => {
    release();
    releaseAgain();
    close();
    await h?.close();
  });

  it('deletes finished and running executions on the queue, and only those', async () => {
    const accept = async () => {
      const response = await h.api('POST', '/v1/conversations', {
        key: h.keys.cleanup,
        body: { session_id: 'cleanup', messages: [{ role: 'user', content: 'Cleanup check: the tram 28 runs through Alfama.' }] },
      });
      expect(response.status).toBe(202);
      return (response.body as { job_id: string }).job_id;
    };
    const finished = await accept();
    await h.waitForJob('cleanup', finished);
    // A job on another queue (nobody polls it) must survive.
    const other = await h.temporal.client.workflow.start('ingestWorkflow', {
      taskQueue: `${h.config.TEMPORAL_TASK_QUEUE}-other`,
      workflowId: `cleanup-other-${Date.now()}`,
      args: [],
    });
    // Running on the queue: a workflow type no worker knows stays open, retrying its first task.
    const running = await h.temporal.client.workflow.start('notAWorkflow', {
      taskQueue: h.config.TEMPORAL_TASK_QUEUE,
      workflowId: `cleanup-running-${Date.now()}`,
      args: [],
    });

    const query = `TaskQueue = "${h.config.TEMPORAL_TASK_QUEUE}"`;
    await waitFor('both executions to be listed', async () => ((await h.temporal.client.workflow.count(query)).count === 2 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
    // The running one goes at once; the finished one once the server has checkpointed its close.
    expect(await deleteTaskQueueWorkflows(h.temporal.client, h.config.TEMPORAL_TASK_QUEUE, { settleMs: 90_000 })).toBe(2);
    expect((await h.temporal.client.workflow.count(query)).count).toBe(0);
    await expect(running.describe()).rejects.toThrow(/not found/i);
    await expect(h.jobs.handle('cleanup', finished).describe()).rejects.toThrow(/not found/i);
    // The job's answer outlives its workflow: the stored summary.
    const status = await h.api('GET', `/v1/jobs/${finished}`, { key: h.keys.cleanup });
    expect(status.status).toBe(200);
    expect(status.body.status).toBe('completed');
    expect((await other.describe()).status.name).toBe('RUNNING');
    await h.temporal.client.workflowService.deleteWorkflowExecution({
      namespace: h.config.TEMPORAL_NAMESPACE,
      workflowExecution: { workflowId: other.workflowId },
    });
  }, 120_000);

  it('drops what a job derived once its workflow was terminated, keeping its input for a retry', async () => {
    const sent = await h.api('POST', '/v1/documents', { key: h.keys.cleanup, body: { content: 'The funicular climbs to Montjuïc every ten minutes.', metadata: { test: 'held' } } });
    const jobId: string = sent.body.job_id;
    await waitFor('the job to reach extraction', async () => (extracting.has(jobId) ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    const folder = blobKeys.folder('cleanup', jobId);
    const derived = async () => (await h.runtime.blobs.list(folder)).filter(isDerivedArtifact);
    expect((await derived()).length).toBeGreaterThan(0);

    await h.jobs.handle('cleanup', jobId).terminate('stopped by an operator');
    // Nothing else takes them: its summary's writer, which drops a job's artifacts, never runs.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await derived()).length).toBeGreaterThan(0);
    const sweep = new ArtifactSweep(h.temporal.client, h.runtime.blobs, h.config.TEMPORAL_TASK_QUEUE, h.runtime.log, 0);
    await waitFor('a sweep to find the terminated run', async () => ((await sweep.sweep()) > 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    expect(await derived()).toEqual([]);
    expect(await h.runtime.blobs.list(folder)).toContain(blobKeys.upload('cleanup', jobId));

    release();
    const retry = await h.api('POST', `/v1/jobs/${jobId}/retry`, { key: h.keys.cleanup });
    expect(retry.status).toBe(202);
    expect((await h.waitForJob('cleanup', retry.body.job_id)).status).toBe('completed');
  });

  it('keeps what a run of the same job id started as the sweep deletes wrote: that job completes', async () => {
    const sent = await h.api('POST', '/v1/documents', { key: h.keys.cleanup, body: { content: 'The ferry to Cacilhas leaves from Cais do Sodré.', metadata: { test: 'held-again' } } });
    const jobId: string = sent.body.job_id;
    await waitFor('the job to reach extraction', async () => (arrivals.get(jobId) === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    const handle = h.jobs.handle('cleanup', jobId);
    const input = await startInputOf(handle);
    await handle.terminate('stopped by an operator');
    const folder = blobKeys.folder('cleanup', jobId);
    // The job id runs again (as a re-send under an id derived from what the caller sent starts it)
    // once the sweep has found its closed run still the latest, before it deletes: the new run has
    // parsed and chunked again, under the same keys, and waits in extraction.
    let startedAgain = false;
    let writtenAgain: string[] = [];
    const blobs = h.runtime.blobs;
    const racing: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      list: async (listed: string) => {
        if (listed === folder && !startedAgain) {
          startedAgain = true;
          await h.temporal.client.workflow.start('ingestWorkflow', { taskQueue: h.config.TEMPORAL_TASK_QUEUE, workflowId: handle.workflowId, args: [input] });
          await waitFor('the new run to reach extraction', async () => (arrivals.get(jobId) === 2 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
          writtenAgain = (await blobs.list(folder)).filter(isDerivedArtifact).sort();
        }
        return blobs.list(listed);
      },
    });
    const sweep = new ArtifactSweep(h.temporal.client, racing, h.config.TEMPORAL_TASK_QUEUE, h.runtime.log, 0);
    await waitFor('a sweep to find the terminated run', async () => (await sweep.sweep(), startedAgain ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    expect(writtenAgain).toContain(blobKeys.parsed('cleanup', jobId));
    expect((await blobs.list(folder)).filter(isDerivedArtifact).sort()).toEqual(writtenAgain);
    releaseAgain();
    expect((await h.waitForJob('cleanup', jobId)).status).toBe('completed');
  });
});
