import type { Client } from '@temporalio/client';

/**
 * Deletes every workflow execution on a throw-away task queue (a test run's or a bench's), running
 * or closed, with its history and visibility record. Without it each bench run leaves about a
 * thousand executions in the local dev server's SQLite file until the namespace's retention ends;
 * the file grew by ~25 MB a run, and acceptance latency grew with it (bench:api --no-worker p99
 * went from about 32 ms on a fresh file to 82 ms at 360 MB), so runs were not comparable.
 * A running execution goes at once; a closed one once the server has checkpointed its close
 * (a few seconds on the local dev server, whose queues checkpoint every 2 s; 30 s by default), so with `settleMs` this waits, at most that long, until the queue
 * lists nothing — a bench's next run then starts on a server with no deletions pending.
 * Returns how many executions were deleted.
 */
export async function deleteTaskQueueWorkflows(client: Client, taskQueue: string, options: { settleMs?: number; concurrency?: number } = {}): Promise<number> {
  const { settleMs = 0, concurrency = 16 } = options;
  const namespace = client.options.namespace;
  let deleted = 0;
  const pending = new Set<Promise<void>>();
  const query = `TaskQueue = "${taskQueue}"`;
  for await (const execution of client.workflow.list({ query })) {
    const call = client.workflowService
      .deleteWorkflowExecution({ namespace, workflowExecution: { workflowId: execution.workflowId, runId: execution.runId } })
      .then(
        () => {
          deleted += 1;
        },
        () => undefined, // already gone (deleted by retention, or twice listed): nothing to do
      )
      .finally(() => pending.delete(call));
    pending.add(call);
    if (pending.size >= concurrency) await Promise.race(pending);
  }
  await Promise.all(pending);
  const deadline = Date.now() + settleMs;
  while (Date.now() < deadline && (await client.workflow.count(query)).count > 0) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return deleted;
}
