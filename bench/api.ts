/**
 * `npm run bench:api -- [--duration 10] [--connections 8] [--rate 50] [--worker-nice 10] [--no-worker] [--json]`
 *
 * Acceptance latency of conversation ingests: autocannon drives POST /v1/conversations and measures
 * the time to a 202 — auth, validation, the blob write and the workflow start (Temporal's durable
 * acknowledgement). By default the bench starts its own Cairn against the local services: the API in
 * this process, a worker in a child process (the jobs are really processed, competing for the same
 * cores), on a throw-away index prefix and task queue. Set CAIRN_URL (and CAIRN_API_KEY) to drive a
 * running API instead.
 * Every request carries different text (a sequence number), so no two jobs are the same source.
 * With --json the last stdout line is {"p50_ms", "p99_ms", "rps", …}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { StaticKeyResolver } from '../api/auth';
import { createApp } from '../api/server';
import { loadConfig, type Config } from '../lib/config';
import { deleteIndices } from '../lib/elasticsearch/indices';
import { IngestJobs } from '../lib/jobs';
import { ensureLocalServices } from '../lib/local-services';
import { createLogger } from '../lib/logger';
import { createRuntime, searchDepsOf } from '../lib/runtime';
import { connectTemporal, ensureSearchAttributes, type TemporalHandle } from '../lib/temporal/connect';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
const asJson = process.argv.includes('--json');
/** `--no-worker`: measure acceptance alone (jobs queue up and are terminated at the end). */
const withWorker = !process.argv.includes('--no-worker');
const log = (line: string) => (asJson ? process.stderr : process.stdout).write(`${line}\n`);

interface Target {
  url: string;
  key: string;
  label: string;
  /** Lets queued jobs drain (bounded), then stops anything left, so the shared server is left clean. */
  close(): Promise<void>;
}

/**
 * In production the API and the worker are separate replicas on separate hosts. Sharing two cores
 * here, the worker runs at a lower CPU priority (`--worker-nice`, default 10) so the API is not
 * queued behind embedding work it would never share a host with; the jobs are still processed.
 */
async function startWorker(env: NodeJS.ProcessEnv, temporal: TemporalHandle, config: Config): Promise<ChildProcess> {
  const workerCommand = [process.execPath, require.resolve('tsx/cli'), path.resolve(__dirname, '../worker/main.ts')];
  const worker = spawn('nice', ['-n', String(option('worker-nice', 10)), ...workerCommand], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker did not start within 120 s')), 120_000);
    worker.once('exit', (code) => reject(new Error(`the worker exited with code ${code}`)));
    // LOG_LEVEL=warn hides "worker started": a poller on the task queue is the readiness signal.
    const poll = setInterval(async () => {
      const queue = await temporal.client.workflowService
        .describeTaskQueue({ namespace: config.TEMPORAL_NAMESPACE, taskQueue: { name: config.TEMPORAL_TASK_QUEUE }, taskQueueType: 1 })
        .catch(() => undefined);
      if ((queue?.pollers?.length ?? 0) > 0) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }
    }, 500);
  });
  return worker;
}

/**
 * The API in this process and the worker in a child process, as they are deployed (separate
 * replicas): the worker's CPU-heavy activities (parsing, embedding) then cost the API cores, not
 * event-loop turns. Both on a throw-away index prefix, task queue and blob folder.
 */
async function inProcessTarget(): Promise<Target> {
  const id = randomBytes(4).toString('hex');
  const key = `bench_${id}`;
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    ELASTICSEARCH_INDEX_PREFIX: `cairn-bench-${id}`,
    TEMPORAL_TASK_QUEUE: `cairn-bench-${id}`,
    CAIRN_BLOB_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-blobs-')),
    CAIRN_API_KEYS: `${key}=bench`,
  };
  const config = loadConfig(env);
  await ensureLocalServices(config, (line) => log(`[services] ${line}`));
  const logger = createLogger('warn', 'cairn-bench');
  const runtime = await createRuntime(config, logger);
  const temporal = await connectTemporal(config);
  await ensureSearchAttributes(temporal, config.TEMPORAL_NAMESPACE);

  const worker = withWorker ? await startWorker(env, temporal, config) : undefined;

  const jobs = new IngestJobs(temporal.client, runtime.blobs, config, runtime.es);
  const app = createApp({
    es: runtime.es,
    temporal: temporal.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    jobs,
    keys: [new StaticKeyResolver(config.staticApiKeys)],
    log: logger,
    search: searchDepsOf(runtime),
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    key,
    label: withWorker ? 'in-process API + worker process' : 'in-process API, no worker (acceptance only)',
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const query = `TaskQueue = "${config.TEMPORAL_TASK_QUEUE}" AND ExecutionStatus = "Running"`;
      const deadline = Date.now() + (worker ? 30_000 : 0);
      let running = await temporal.client.workflow.count(query);
      while (running.count > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        running = await temporal.client.workflow.count(query);
      }
      if (running.count > 0) {
        log(`stopping ${running.count} jobs still queued after the run`);
        const pending: Promise<unknown>[] = [];
        for await (const execution of temporal.client.workflow.list({ query })) {
          pending.push(temporal.client.workflow.getHandle(execution.workflowId).terminate('bench finished').catch(() => undefined));
          if (pending.length >= 50) await Promise.all(pending.splice(0));
        }
        await Promise.all(pending);
      }
      if (worker) {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
        if (worker.exitCode === null) worker.kill('SIGKILL');
      }
      await temporal.connection.close();
      await deleteIndices(runtime.es, config.ELASTICSEARCH_INDEX_PREFIX);
      await runtime.close();
      fs.rmSync(config.blobDir, { recursive: true, force: true });
    },
  };
}

function conversation(n: number) {
  return JSON.stringify({
    session_id: `bench-${n % 50}`,
    messages: [
      { role: 'user', content: `Request ${n}: I am planning a trip to Lisbon in May and I want to see the tram 28 route.` },
      { role: 'assistant', content: `Noted for request ${n}: Lisbon in May, tram 28. Anything else?` },
    ],
  });
}

async function main() {
  const duration = option('duration', 10);
  const connections = option('connections', 8);
  // Open loop: a fixed arrival rate (requests/s over all connections), as agents send, rather than
  // connections firing back to back, which only measures queueing at saturation. 0 = closed loop.
  const rate = option('rate', 50);
  const target: Target = process.env.CAIRN_URL
    ? { url: process.env.CAIRN_URL.replace(/\/$/, ''), key: process.env.CAIRN_API_KEY ?? '', label: process.env.CAIRN_URL, close: async () => undefined }
    : await inProcessTarget();
  try {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${target.key}` };
    // Warm-up: the Temporal client's connection, the blob folder, JIT.
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${target.url}/v1/conversations`, { method: 'POST', headers, body: conversation(-1 - i) });
      if (response.status !== 202) throw new Error(`warm-up ingest answered ${response.status}: ${await response.text()}`);
    }
    log(`bench:api — POST /v1/conversations for ${duration}s, ${connections} connections, ${rate > 0 ? `${rate} requests/s offered` : 'closed loop'}, against ${target.label}`);
    let sequence = 0;
    const result = await autocannon({
      url: `${target.url}/v1/conversations`,
      method: 'POST',
      headers,
      connections,
      duration,
      ...(rate > 0 ? { overallRate: rate } : {}),
      requests: [{ setupRequest: (request) => ({ ...request, body: conversation(sequence++) }) }],
    });
    const summary = {
      p50_ms: result.latency.p50,
      p90_ms: result.latency.p90,
      p99_ms: result.latency.p99,
      max_ms: result.latency.max,
      mean_ms: Number(result.latency.average.toFixed(2)),
      rps: Number(result.requests.average.toFixed(1)),
      requests: result.requests.total,
      non_2xx: result.non2xx,
      errors: result.errors,
      duration_s: duration,
      connections,
      offered_rps: rate > 0 ? rate : null,
    };
    log(`acceptance latency p50 ${summary.p50_ms} ms, p90 ${summary.p90_ms} ms, p99 ${summary.p99_ms} ms, max ${summary.max_ms} ms`);
    log(`throughput ${summary.rps} requests/s (${summary.requests} accepted in ${duration}s, ${summary.non_2xx} non-2xx, ${summary.errors} errors)`);
    if (asJson) process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (summary.non_2xx > 0 || summary.errors > 0) process.exitCode = 1;
  } finally {
    await target.close();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
