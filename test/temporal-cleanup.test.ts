import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

describe('deleting a throw-away task queue’s workflows (benches and test runs)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ tenants: ['cleanup'] });
  });
  afterAll(() => h?.close());

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
});
