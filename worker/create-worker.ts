import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type Activities } from '../activities/registry';
import { embeddingSpec } from '../lib/models/providers';
import type { Runtime } from '../lib/runtime';
import { activityTelemetry } from './telemetry';

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

export async function createWorker({ runtime, taskQueue, workflowBundle, connection, wrapActivities }: CreateWorkerOptions): Promise<{ worker: Worker; connection: NativeConnection }> {
  const { config } = runtime;
  const nativeConnection = connection ?? (await NativeConnection.connect({ address: config.temporalAddress }));
  const activities = createActivities({
    config,
    es: runtime.es,
    indices: runtime.indices,
    blobs: runtime.blobs,
    embedder: runtime.models.embedder,
    embeddingMatch: runtime.embeddingMatch.for(embeddingSpec(runtime.models.embedder)),
    extractors: runtime.models.extractors,
    log: runtime.log,
  });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: taskQueue ?? config.TEMPORAL_TASK_QUEUE,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: {} }),
    activities: wrapActivities ? wrapActivities(activities) : activities,
    maxConcurrentActivityTaskExecutions: 16,
    interceptors: { activity: [activityTelemetry(runtime.log)] },
    // On SIGTERM, in-flight activities get this long to finish and report before they are cancelled.
    shutdownGraceTime: '30 seconds',
  });
  return { worker, connection: nativeConnection };
}
