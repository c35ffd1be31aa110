import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { DefaultLogger, Runtime as TemporalRuntime } from '@temporalio/worker';
import { StaticKeyResolver, type KeyResolver } from '../../api/auth';
import { createApp } from '../../api/server';
import { documentedAnswer } from '../../api/openapi';
import { undocumentedFields } from './undocumented-fields';
import { z } from 'zod';
import { loadConfig, type Config } from '../../lib/config';
import { deleteIndices } from '../../lib/elasticsearch/indices';
import { IngestJobs } from '../../lib/jobs';
import { createLogger } from '../../lib/logger';
import { createRuntime, searchDepsOf, type Runtime } from '../../lib/runtime';
import { deleteTaskQueueWorkflows } from '../../lib/temporal/cleanup';
import { connectTemporal, ensureSearchAttributes, type TemporalHandle } from '../../lib/temporal/connect';
import type { JobProgress } from '../../lib/domain/job';
import { createWorker, type CairnWorker } from '../../worker/create-worker';
import { expectedSdkNotice, quietRoutineWorkflowTaskWarnings } from '../../worker/telemetry';
import type { Activities } from '../../activities/registry';

export interface Harness {
  config: Config;
  runtime: Runtime;
  temporal: TemporalHandle;
  jobs: IngestJobs;
  worker: CairnWorker;
  baseUrl: string;
  /** API keys of this harness: tenant → key. */
  keys: Record<string, string>;
  /** The operator key (CAIRN_API_KEY). */
  operatorKey: string;
  api(method: string, path: string, options?: { key?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  /** Another API over the same runtime, jobs and services, as a second API process would be: its own app and in-process state. */
  anotherApi(): Promise<Harness['api']>;
  /** The same requests as `api`, to an API at another address (a process a test started). */
  apiAt(baseUrl: string): Harness['api'];
  waitForJob(tenant: string, jobId: string, timeoutMs?: number): Promise<JobProgress>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  tenants?: string[];
  env?: Record<string, string>;
  /** Wraps activities, e.g. to inject a transient fault into one stage. */
  wrapActivities?: (activities: Activities) => Activities;
  extraKeyResolvers?: (runtime: Runtime) => KeyResolver[];
}

/**
 * A real Cairn against the real local services, isolated per test file: its own index prefix, blob
 * folder and task queue, with an in-process worker and the API on an ephemeral port.
 */
let temporalRuntimeInstalled = false;

/** A schema as the OpenAPI document publishes it (JSON Schema), made once per schema. */
const published = new WeakMap<z.ZodType, object>();
function publishedSchema(schema: z.ZodType): object {
  let json = published.get(schema);
  if (!json) published.set(schema, (json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as object));
  return json;
}

/**
 * Closes a Temporal connection a minute from now, not now: Connection.close() leaves the SDK's gRPC
 * retry timers running, and a retry of a call that failed during the teardown (or one a test's deadline
 * gave up on, still retrying against a Temporal that is down) then throws "Channel has been shut down"
 * from its timer, failing the suite after its tests passed. Unref'd: it keeps no process alive.
 */
export function closeTemporalLater(connection: { close(): Promise<void> }): void {
  setTimeout(() => void connection.close().catch(() => undefined), 60_000).unref();
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  if (!temporalRuntimeInstalled) {
    quietRoutineWorkflowTaskWarnings();
    TemporalRuntime.install({
      logger: new DefaultLogger('WARN', ({ level, message, meta }) => {
        if (!expectedSdkNotice(message)) console.warn(`[${level}] ${message}`, meta ?? '');
      }),
    });
    temporalRuntimeInstalled = true;
  }
  const id = randomBytes(4).toString('hex');
  const tenants = options.tenants ?? ['acme', 'globex'];
  const keys = Object.fromEntries(tenants.map((tenant) => [tenant, `test_${tenant}_${id}`]));
  const config = loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ELASTICSEARCH_INDEX_PREFIX: `cairn-test-${id}`,
    TEMPORAL_TASK_QUEUE: `cairn-test-${id}`,
    CAIRN_BLOB_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-blobs-')),
    CAIRN_API_KEYS: Object.entries(keys).map(([tenant, key]) => `${key}=${tenant}`).join(','),
    // The operator key (tenant "default"), which administers keys of every tenant.
    CAIRN_API_KEY: `test_operator_${id}`,
    // Every job is started before its 2xx, so a test may reach its workflow through Temporal at once.
    // Answering before a slow start is acknowledged is tested on its own (api-accept-pending).
    ACCEPT_START_WAIT_MS: '0',
    ...options.env,
  });
  const log = createLogger(config.LOG_LEVEL, 'cairn-test');
  const runtime = await createRuntime(config, log);
  const temporal = await connectTemporal(config);
  await ensureSearchAttributes(temporal, config.TEMPORAL_NAMESPACE);
  const bundleFile = process.env.CAIRN_TEST_WORKFLOW_BUNDLE;
  const { worker, connection } = await createWorker({
    runtime,
    workflowBundle: bundleFile ? { code: fs.readFileSync(bundleFile, 'utf8') } : undefined,
    wrapActivities: options.wrapActivities,
  });
  const running = worker.run();
  const jobs = new IngestJobs(temporal.client, runtime.blobs, config, runtime.es);
  /** An API over this harness's runtime and jobs: its own app, so its own in-process state, as another API process has. */
  const newApp = () =>
    createApp({
      es: runtime.es,
      temporal: temporal.connection,
      namespace: config.TEMPORAL_NAMESPACE,
      jobs,
      keys: [new StaticKeyResolver(config.staticApiKeys, config.operatorApiKey), ...(options.extraKeyResolvers?.(runtime) ?? [])],
      log,
      search: searchDepsOf(runtime),
      extractors: runtime.models.extractors,
    });
  const servers: Server[] = [];
  const serve = async (app: ReturnType<typeof createApp>) => {
    const server: Server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const defaultKey = keys[tenants[0]!]!;
  const client = (base: string): Harness['api'] => async (method, route, { key = defaultKey, body, headers = {} } = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (key) (init.headers as Record<string, string>).authorization = `Bearer ${key}`;
    if (body instanceof FormData || body instanceof URLSearchParams) init.body = body;
    else if (typeof body === 'string') init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${base}${route}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON; keep the text
    }
    // Every answer a test receives is held to what the OpenAPI document publishes for it: its status
    // listed, its body in the schema, with no field the schema does not name.
    const documented = documentedAnswer(method, route, response.status);
    if (documented && !documented.documented) throw new Error(`${method} ${route} answered ${response.status}, a status its OpenAPI entry does not list: ${text.slice(0, 500)}`);
    const conforms = documented?.schema?.safeParse(parsed);
    if (conforms && !conforms.success) {
      throw new Error(`${method} ${route} answered ${response.status} outside its documented schema: ${JSON.stringify(conforms.error.issues).slice(0, 2000)}`);
    }
    const extra = documented?.schema ? undocumentedFields(publishedSchema(documented.schema), parsed) : [];
    if (extra.length > 0) throw new Error(`${method} ${route} answered ${response.status} with fields its documented schema does not name: ${extra.slice(0, 20).join(', ')}`);
    return { status: response.status, body: parsed, headers: response.headers };
  };
  const baseUrl = await serve(newApp());

  const harness: Harness = {
    config,
    runtime,
    temporal,
    jobs,
    worker,
    baseUrl,
    operatorKey: config.operatorApiKey!,
    keys,
    api: client(baseUrl),
    anotherApi: async () => client(await serve(newApp())),
    apiAt: client,
    async waitForJob(tenant, jobId, timeoutMs = 60_000) {
      const handle = jobs.handle(tenant, jobId);
      await Promise.race([
        handle.result().catch(() => undefined),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`job ${jobId} did not finish in ${timeoutMs} ms`)), timeoutMs)),
      ]);
      return (await jobs.progress(tenant, jobId))!;
    },
    async close() {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      // A test may have stopped the worker itself.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      // The run's jobs would otherwise stay in a reused local server's database until retention.
      await deleteTaskQueueWorkflows(temporal.client, config.TEMPORAL_TASK_QUEUE);
      closeTemporalLater(temporal.connection);
      await deleteIndices(runtime.es, config.ELASTICSEARCH_INDEX_PREFIX);
      await runtime.close();
      fs.rmSync(config.blobDir, { recursive: true, force: true });
    },
  };
  return harness;
}
