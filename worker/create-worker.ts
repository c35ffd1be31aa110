import { NativeConnection, Runtime as TemporalRuntime, Worker, bundleWorkflowCode, type WorkerOptions, type WorkflowBundle, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type Activities } from '../activities/registry';
import { ActivitiesInFlight } from '../lib/activities-in-flight';
import { CpuTurns } from '../lib/cpu-turns';
import { PromptRefresh } from '../lib/elasticsearch/refresh';
import { embeddingSpec } from '../lib/models/providers';
import type { Runtime } from '../lib/runtime';
import { waitedOnTaskQueue, webhookTaskQueue } from '../lib/temporal/task-queues';
import { activityTelemetry, cpuTurnsTelemetry } from './telemetry';

// Resolves to workflows/index.ts from source (tsx, Jest) and to dist/workflows/index.js when built.
export const WORKFLOWS_PATH = require.resolve('../workflows');

export interface CreateWorkerOptions {
  runtime: Runtime;
  taskQueue?: string;
  /** A pre-built bundle (tests build it once); otherwise the worker bundles the workflows itself. */
  workflowBundle?: WorkflowBundle;
  connection?: NativeConnection;
  /** Tests wrap activities to inject faults; production passes nothing. */
  wrapActivities?: (activities: Activities) => Activities;
}

export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

/**
 * Cairn's worker: the job queue's (workflows and every stage), the waited-on queue's (activities a
 * caller is waiting on) and the webhook queue's (deliveries), each with its own slots
 * (lib/temporal/task-queues.ts), run and stopped together.
 */
export class CairnWorker {
  constructor(private readonly workers: Worker[]) {}

  /** Runs until shut down (SIGINT/SIGTERM drain in-flight activities first); one stopping stops the others. */
  async run(): Promise<void> {
    const runs = await Promise.allSettled(this.workers.map((worker) => worker.run().finally(() => this.shutdown())));
    const failed = runs.find((run): run is PromiseRejectedResult => run.status === 'rejected');
    if (failed) throw failed.reason;
  }

  shutdown(): void {
    for (const worker of this.workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  }

  getState(): ReturnType<Worker['getState']> {
    return this.workers[0]!.getState();
  }
}

export async function createWorker({ runtime, taskQueue, workflowBundle, connection, wrapActivities }: CreateWorkerOptions): Promise<{ worker: CairnWorker; connection: NativeConnection }> {
  const { config } = runtime;
  const nativeConnection = connection ?? (await NativeConnection.connect({ address: config.temporalAddress }));
  const activitiesInFlight = new ActivitiesInFlight();
  const activities = createActivities({
    config,
    es: runtime.es,
    indices: runtime.indices,
    blobs: runtime.blobs,
    embedder: runtime.models.embedder,
    embeddingMatch: runtime.embeddingMatch.for(embeddingSpec(runtime.models.embedder)),
    extractors: runtime.models.extractors,
    cpuTurns: new CpuTurns(cpuTurnsTelemetry(TemporalRuntime.instance().metricMeter)),
    activitiesInFlight,
    promptRefresh: new PromptRefresh(runtime.es, () => activitiesInFlight.size),
    log: runtime.log,
  });
  const queue = taskQueue ?? config.TEMPORAL_TASK_QUEUE;
  const wrapped = wrapActivities ? wrapActivities(activities) : activities;
  const common: Pick<WorkerOptions, 'connection' | 'namespace' | 'interceptors' | 'shutdownGraceTime'> = {
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: { activity: [activityTelemetry(runtime.log)] },
    // On SIGTERM, in-flight activities get this long to finish and report before they are cancelled.
    shutdownGraceTime: '30 seconds',
  };
  const jobs = await Worker.create({
    ...common,
    taskQueue: queue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: {} }),
    activities: wrapped,
    maxConcurrentActivityTaskExecutions: 16,
  });
  // Short writes whose caller waits for the answer: never queued behind the job queue's stages.
  const waitedOn = await Worker.create({
    ...common,
    taskQueue: waitedOnTaskQueue(queue),
    activities: { writeActiveFragments: wrapped.writeActiveFragments },
    maxConcurrentActivityTaskExecutions: 16,
  });
  // Webhook deliveries, retried for days against receivers that are down: never in the job queue's slots.
  const webhooks = await Worker.create({
    ...common,
    taskQueue: webhookTaskQueue(queue),
    activities: { deliverJobEvent: wrapped.deliverJobEvent },
    maxConcurrentActivityTaskExecutions: 16,
  });
  return { worker: new CairnWorker([jobs, waitedOn, webhooks]), connection: nativeConnection };
}
