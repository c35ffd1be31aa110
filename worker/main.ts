import { loadConfigOrExit } from '../lib/config';
import { createLogger } from '../lib/logger';
import { waitForServices } from '../lib/startup';
import { createRuntime } from '../lib/runtime';
import { connectTemporal, ensureSearchAttributes } from '../lib/temporal/connect';
import { Runtime } from '@temporalio/worker';
import { waitedOnTaskQueue, webhookTaskQueue } from '../lib/temporal/task-queues';
import { ArtifactSweep } from '../lib/temporal/artifact-sweep';
import { createWorker } from './create-worker';
import { quietRoutineWorkflowTaskWarnings, runtimeOptions } from './telemetry';

async function main() {
  const config = loadConfigOrExit();
  const log = createLogger(config.LOG_LEVEL, 'cairn-worker');
  // Before any native connection exists: the runtime's logger and Prometheus exporter are process-wide.
  quietRoutineWorkflowTaskWarnings();
  const metricsAddress = config.CAIRN_WORKER_METRICS_ADDRESS || undefined;
  try {
    Runtime.install(runtimeOptions(log, metricsAddress));
  } catch (error) {
    // Most often another worker on this host holds the port.
    if (!metricsAddress) throw error;
    throw new Error(`the worker could not serve its metrics on ${metricsAddress} (CAIRN_WORKER_METRICS_ADDRESS): ${error instanceof Error ? error.message : String(error)}; set another address, or an empty one to serve none`);
  }
  await waitForServices(config, log);
  const runtime = await createRuntime(config, log);
  const temporal = await connectTemporal(config);
  await ensureSearchAttributes(temporal, config.TEMPORAL_NAMESPACE);
  const { worker, connection } = await createWorker({ runtime });
  const sweep = new ArtifactSweep(temporal.client, runtime.blobs, config.TEMPORAL_TASK_QUEUE, log);
  sweep.start();
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, waitedOnTaskQueue: waitedOnTaskQueue(config.TEMPORAL_TASK_QUEUE), webhookTaskQueue: webhookTaskQueue(config.TEMPORAL_TASK_QUEUE), temporal: config.temporalAddress, metrics: config.CAIRN_WORKER_METRICS_ADDRESS || 'off' }, 'worker started');
  // Runs the three task queues' workers; SIGINT/SIGTERM drain in-flight activities first (the SDK installs the handlers).
  await worker.run();
  sweep.stop();
  await temporal.connection.close();
  await connection.close();
  await runtime.close();
  log.info('worker stopped');
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
