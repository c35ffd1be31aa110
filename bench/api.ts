/**
 * `npm run bench:api -- [--duration 10] [--connections 8] [--rate 50] [--worker-nice 19] [--no-worker] [--disk-baseline 10] [--json] [--api-cpu-profile DIR]`
 *
 * Acceptance latency of conversation ingests: POST /v1/conversations, timed to the 202 — auth,
 * validation, and the append and flush of the job to the API's acceptance journal (lib/accept-journal.ts;
 * its upload and workflow start complete in the background); with ACCEPT_JOURNAL=false, the blob
 * write and flush and the workflow start (Temporal's durable acknowledgement), or past
 * ACCEPT_START_WAIT_MS the start's durable record instead (lib/jobs.ts, startInBackground).
 * With `--rate N` (default 50) the load is open: requests arrive as a Poisson process of N per second
 * — independent agents, not a metronome — over at most `--connections` keep-alive connections, and
 * each latency runs from the request's scheduled arrival, so time spent waiting for a free connection
 * counts (no coordinated omission). `--rate 0` is a closed loop (autocannon: every connection sends
 * again as soon as it is answered), which measures saturation throughput.
 * By default the bench starts its own Cairn against the local services: the API and a worker each in
 * a child process (the jobs are really processed, competing for the same cores), on a throw-away
 * index prefix and task queue; this process only generates the load. Set CAIRN_URL (and
 * CAIRN_API_KEY) to drive a running API instead.
 * Every request carries different text (a sequence number), so no two jobs are the same source.
 * When the Temporal server's metrics are reachable (the local dev server's, or TEMPORAL_METRICS_URL),
 * its persistence calls during the load are reported too: the dev server serves them from one SQLite
 * connection, so their summed latency shows how much of the window that queue was busy.
 * `--api-cpu-profile DIR` writes a V8 CPU profile of the API process to DIR when it stops.
 * The API's own time to each answer's headers (its `Server-Timing` header) is reported beside the
 * latency seen here (`server_p50_ms`, `server_p99_ms`), with this process's event-loop delay, so a
 * tail can be placed: in the API, or in the load generator on the same cores.
 * The disk under the API's blob folder (the local bench's, or CAIRN_BLOB_DIR beside CAIRN_URL) is
 * probed during the load (bench/disk-probe.ts): a flush alone, and a new file written and flushed as
 * an upload is, reported as `disk`: an acceptance waits for the like of the second. The same probe runs
 * for `--disk-baseline S` seconds (default 10, 0 to skip) before the warm-up, with nothing of the run's
 * load going, reported as `disk_idle`: what the disk's flush costs here on its own.
 * The API's own timing of each step its acceptances waited on (the upload written and flushed, the
 * start acknowledged, a slow start's record: its /metrics) is reported as `accept_steps`.
 * With --json the last stdout line is {"p50_ms", "p99_ms", "rps", …, "temporal_persistence", "accept_steps", "disk", "disk_idle"}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { loadConfig, type Config } from '../lib/config';
import { deleteIndices } from '../lib/elasticsearch/indices';
import { ensureLocalServices } from '../lib/local-services';
import { freePort } from '../lib/local-services/ports';
import { lowerCpuPriority } from '../lib/local-services/process';
import { createLogger } from '../lib/logger';
import { createRuntime } from '../lib/runtime';
import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { connectTemporal, ensureSearchAttributes, isPolled, type TemporalHandle } from '../lib/temporal/connect';
import { WORKER_NODE_FLAGS } from '../worker/node-flags';
import { startDiskProbe, type DiskProbeResult } from './disk-probe';
import { counterWindow, seriesWindow } from './prometheus';
import { quantile } from './stats';
import { persistenceWindow } from './temporal-metrics';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
function optionText(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
const asJson = process.argv.includes('--json');
const WARMUP_REQUESTS = 20;
/** `--no-worker`: measure acceptance alone (jobs queue up and are deleted at the end). */
const withWorker = !process.argv.includes('--no-worker');
const log = (line: string) => (asJson ? process.stderr : process.stdout).write(`${line}\n`);

interface Target {
  url: string;
  key: string;
  label: string;
  /** The API's blob folder, when on this machine: the disk it flushes uploads to is probed during the load. */
  blobDir?: string;
  /** The Temporal server's Prometheus endpoint, when known: its persistence work is reported. */
  temporalMetricsUrl?: string;
  /** Stops the API and the worker, then deletes the run's jobs, so the shared server is left as it was. */
  close(): Promise<void>;
}

/**
 * In production the API and the worker are separate replicas on separate hosts. Sharing two cores
 * here, the worker runs at the lowest CPU priority (`--worker-nice`, default 19) in a session of its
 * own, so the API, Temporal and Elasticsearch are not queued behind embedding work they would never
 * share a host with (see lowerCpuPriority); the jobs are still processed. Measured, 4 runs each of
 * 30 s: p99 128–207 ms against 290–2,536 ms with `nice 10` inside the bench's own session, with the
 * worker closing about as many workflows.
 */
async function startWorker(env: NodeJS.ProcessEnv, temporal: TemporalHandle, config: Config): Promise<ChildProcess> {
  const workerCommand = [process.execPath, ...WORKER_NODE_FLAGS, '--import', 'tsx', path.resolve(__dirname, '../worker/main.ts')];
  const worker = spawn(workerCommand[0]!, workerCommand.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  lowerCpuPriority(worker.pid!, option('worker-nice', 19));
  // In a session of its own, the worker does not get the terminal's Ctrl-C: stop it with the bench.
  process.once('exit', () => worker.exitCode === null && worker.kill('SIGTERM'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  worker.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker did not start within 120 s')), 120_000);
    worker.once('exit', (code) => reject(new Error(`the worker exited with code ${code}`)));
    // LOG_LEVEL=warn hides "worker started": a poller on the task queue is the readiness signal.
    const poll = setInterval(async () => {
      if (await isPolled(temporal, config.TEMPORAL_NAMESPACE, config.TEMPORAL_TASK_QUEUE)) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }
    }, 500);
  });
  return worker;
}


/** `npm run start:api` in a child process, ready once /readyz answers 200. */
async function startApi(env: NodeJS.ProcessEnv): Promise<{ process: ChildProcess; url: string }> {
  const port = await freePort();
  // Node itself, with tsx as a loader (not tsx's CLI, which would run the API in a grandchild), so
  // `--api-cpu-profile` profiles the API process and nothing else.
  const profileDir = optionText('api-cpu-profile');
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', path.resolve(__dirname, '../api/main.ts')], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API exited with code ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then((response) => response.ok).catch(() => false);
    if (ready) return { process: child, url };
    if (Date.now() > deadline) throw new Error('the API was not ready within 120 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function stopChild(child: ChildProcess | undefined) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/**
 * The API and the worker each in a child process, as they are deployed (separate replicas), and
 * the load generator in this one: the generator's own work never delays the API's event loop, and
 * the worker's CPU-heavy activities (parsing, embedding) cost the API cores, not event-loop turns.
 * Both on a throw-away index prefix, task queue and blob folder.
 */
async function localTarget(): Promise<Target> {
  const id = randomBytes(4).toString('hex');
  const key = `bench_${id}`;
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    ELASTICSEARCH_INDEX_PREFIX: `cairn-bench-${id}`,
    TEMPORAL_TASK_QUEUE: `cairn-bench-${id}`,
    CAIRN_BLOB_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-blobs-')),
    ACCEPT_JOURNAL_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-journal-')),
    CAIRN_API_KEYS: `${key}=bench`,
    // No Prometheus endpoint for the throw-away worker: a running `npm run dev` holds the default port.
    CAIRN_WORKER_METRICS_ADDRESS: '',
  };
  const config = loadConfig(env);
  await ensureLocalServices(config, (line) => log(`[services] ${line}`));
  const logger = createLogger('warn', 'cairn-bench');
  const runtime = await createRuntime(config, logger);
  const temporal = await connectTemporal(config);
  await ensureSearchAttributes(temporal, config.TEMPORAL_NAMESPACE);

  const worker = withWorker ? await startWorker(env, temporal, config) : undefined;
  const api = await startApi(env);
  return {
    url: api.url,
    key,
    label: withWorker ? 'API process + worker process' : 'API process, no worker (acceptance only)',
    blobDir: config.blobDir,
    temporalMetricsUrl: config.localTemporal ? `http://127.0.0.1:${config.TEMPORAL_METRICS_PORT}/metrics` : undefined,
    close: async () => {
      await stopChild(api.process);
      await stopChild(worker);
      // The jobs are throw-away: every execution on the bench's task queue is deleted, finished or
      // still queued, so runs do not grow the local server's database (see deleteTaskQueueWorkflows).
      const deleted = await deleteTaskQueueWorkflows(temporal.client, config.TEMPORAL_TASK_QUEUE, { settleMs: 90_000 });
      log(`deleted the run's ${deleted} workflow executions`);
      await temporal.connection.close();
      await deleteIndices(runtime.es, config.ELASTICSEARCH_INDEX_PREFIX);
      await runtime.close();
      fs.rmSync(config.blobDir, { recursive: true, force: true });
      fs.rmSync(config.journalDir, { recursive: true, force: true });
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
    ? { url: process.env.CAIRN_URL.replace(/\/$/, ''), key: process.env.CAIRN_API_KEY ?? '', label: process.env.CAIRN_URL, blobDir: process.env.CAIRN_BLOB_DIR, close: async () => undefined }
    : await localTarget();
  target.temporalMetricsUrl ??= process.env.TEMPORAL_METRICS_URL;
  try {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${target.key}` };
    // The disk with no load of this run: the floor under any answer given once the request is flushed.
    const baselineSeconds = option('disk-baseline', 10);
    let diskIdle: DiskProbeResult | null = null;
    if (target.blobDir && baselineSeconds > 0) {
      // Denser than during the load (20 ms of rest, not 100): nothing else is running, and a stall of
      // the disk's own (seen here on an idle machine, 100 ms to over a second) is seldom enough that
      // ~100 probes would miss it.
      const endIdleProbe = await startDiskProbe(target.blobDir, 20);
      await new Promise((resolve) => setTimeout(resolve, baselineSeconds * 1000));
      diskIdle = await endIdleProbe();
    }
    // Warm-up: the Temporal client's connection, the blob folder, JIT.
    for (let i = 0; i < WARMUP_REQUESTS; i++) {
      const response = await fetch(`${target.url}/v1/conversations`, { method: 'POST', headers, body: conversation(-1 - i) });
      if (response.status !== 202) throw new Error(`warm-up ingest answered ${response.status}: ${await response.text()}`);
    }
    log(`bench:api — POST /v1/conversations for ${duration}s, ${connections} connections, ${rate > 0 ? `${rate} requests/s offered` : 'closed loop'}, against ${target.label}`);
    let sequence = 0;
    const endWindow = await persistenceWindow(target.temporalMetricsUrl);
    const acceptedBeforeStart = await counterWindow(`${target.url}/metrics`, 'cairn_ingest_accepted_before_start_total');
    const endAcceptSteps = await acceptStepsWindow(`${target.url}/metrics`);
    const endDiskProbe = target.blobDir ? await startDiskProbe(target.blobDir) : undefined;
    const summary = {
      ...(rate > 0
        ? await openLoop(target, headers, { rate, connections, duration })
        : await closedLoop(target, headers, { connections, duration, body: () => conversation(sequence++) })),
      duration_s: duration,
      connections,
      offered_rps: rate > 0 ? rate : null,
      temporal_persistence: await endWindow(),
      // The API's own timing of each step its acceptances waited on (cairn_ingest_accept_step_seconds).
      accept_steps: await endAcceptSteps(),
      // The disk under the API's blob folder, probed during the load: no durable answer beats its flush.
      disk: endDiskProbe ? await endDiskProbe() : null,
      disk_idle: diskIdle,
      // Of the run's requests, how many were answered once their start was recorded, before Temporal
      // acknowledged it: the API process's own count (one replica's, behind a balancer), null if unread.
      accepted_before_start: await acceptedBeforeStart(),
    };
    log(`acceptance latency p50 ${summary.p50_ms} ms, p90 ${summary.p90_ms} ms, p99 ${summary.p99_ms} ms, max ${summary.max_ms} ms`);
    if (summary.server_p99_ms != null) {
      log(`of which in the API process (Server-Timing): p50 ${summary.server_p50_ms} ms, p99 ${summary.server_p99_ms} ms; ` +
        `this load generator's own event-loop delay p99 ${summary.client_loop_delay_p99_ms} ms`);
    }
    if (summary.accepted_before_start !== null) {
      log(`answered before Temporal acknowledged the start (from the acceptance journal, or past ACCEPT_START_WAIT_MS from the start's record): ${summary.accepted_before_start} of ${summary.requests}`);
    }
    log(`throughput ${summary.rps} requests/s (${summary.requests} accepted in ${duration}s, ${summary.non_2xx} non-2xx, ${summary.errors} errors)`);
    if (summary.accept_steps) {
      const steps = Object.entries(summary.accept_steps).map(([step, { count, mean_ms, over_50ms }]) => `${step} ${count}× mean ${mean_ms} ms, ${over_50ms} over 50 ms`);
      log(`the steps the API's acceptances waited on (its /metrics): ${steps.join('; ')}`);
    }
    if (summary.disk) log(describeDisk('during the load', summary.disk));
    if (diskIdle) log(describeDisk(`with no load, ${baselineSeconds} s before it`, diskIdle));
    const work = summary.temporal_persistence;
    if (work) {
      const top = Object.entries(work.by_operation).slice(0, 4).map(([operation, { calls, mean_ms }]) => `${operation} ${calls}× ${mean_ms} ms`);
      log(`Temporal persistence during the load: ${work.calls} calls, ${work.latency_s} s summed latency over ${duration} s ` +
        `(one SQLite connection on the dev server); most time: ${top.join(', ')}`);
    }
    if (asJson) process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (summary.non_2xx > 0 || summary.errors > 0) process.exitCode = 1;
  } finally {
    await target.close();
  }
}

function describeDisk(when: string, disk: DiskProbeResult): string {
  return `the disk under the blob folder ${when} (${disk.probes} probes): a flush p50 ${disk.flush_p50_ms} ms, p99 ${disk.flush_p99_ms} ms, ` +
    `max ${disk.flush_max_ms} ms; a new file and folder written and flushed as an upload is, p50 ${disk.create_p50_ms} ms, p99 ${disk.create_p99_ms} ms, max ${disk.create_max_ms} ms`;
}

interface LoadResult {
  /** The API's own time to the answer's headers (Server-Timing), open loop only: null otherwise. */
  server_p50_ms?: number | null;
  server_p99_ms?: number | null;
  /** The load generator's own event-loop delay, p99 (open loop only). */
  client_loop_delay_p99_ms?: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  rps: number;
  requests: number;
  non_2xx: number;
  errors: number;
}

/**
 * Poisson arrivals at `rate` per second for `duration` seconds. Each request is timed from its
 * scheduled arrival: a request that waits for a connection (all busy) or behind a slow event loop
 * has that wait in its latency.
 */
async function openLoop(target: Target, headers: Record<string, string>, options: { rate: number; connections: number; duration: number }): Promise<LoadResult> {
  const origin = new URL(target.url);
  const pool = new Pool(origin.origin, { connections: options.connections, pipelining: 1 });
  const latencies: number[] = [];
  const serverTimes: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const pending: Promise<void>[] = [];
  // This process's own event-loop delay: a late timer or a late read here is latency the API did not cause.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const started = performance.now();
  const end = started + options.duration * 1000;
  let at = started;
  let sequence = 0;
  for (;;) {
    at += (-Math.log(1 - Math.random()) / options.rate) * 1000;
    if (at >= end) break;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const scheduled = at;
    const body = conversation(sequence++);
    pending.push(
      pool
        .request({ path: `${origin.pathname.replace(/\/$/, '')}/v1/conversations`, method: 'POST', headers, body })
        .then(async (response) => {
          await response.body.dump();
          latencies.push(performance.now() - scheduled);
          const server = serverTime(response.headers['server-timing']);
          if (server !== undefined) serverTimes.push(server);
          if (response.statusCode < 200 || response.statusCode >= 300) non2xx += 1;
        })
        .catch(() => {
          errors += 1;
        }),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  loopDelay.disable();
  await pool.close();
  const sorted = latencies.sort((a, b) => a - b);
  const pick = (q: number) => quantile(sorted, q);
  const server = serverTimes.sort((a, b) => a - b);
  return {
    server_p50_ms: server.length ? quantile(server, 0.5) : null,
    server_p99_ms: server.length ? quantile(server, 0.99) : null,
    client_loop_delay_p99_ms: Number((loopDelay.percentile(99) / 1e6).toFixed(1)),
    p50_ms: pick(0.5),
    p90_ms: pick(0.9),
    p99_ms: pick(0.99),
    max_ms: pick(1),
    mean_ms: Number((sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length)).toFixed(2)),
    rps: Number((sorted.length / elapsed).toFixed(1)),
    requests: sorted.length,
    non_2xx: non2xx,
    errors,
  };
}

const ACCEPT_STEPS = ['upload_write', 'upload_flush', 'start', 'start_record', 'journal'] as const;

/**
 * A window over the API's timing of each step an acceptance waits on (lib/jobs.ts, AcceptStep): per
 * step, how many were timed, their mean and how many took over 50 ms (from the histogram's 0.05
 * bucket), or null when the API's /metrics cannot be read.
 */
async function acceptStepsWindow(url: string) {
  const series = (step: string) => {
    const name = 'cairn_ingest_accept_step_seconds';
    return { sum: `${name}_sum{step="${step}"}`, count: `${name}_count{step="${step}"}`, fast: `${name}_bucket{le="0.05",step="${step}"}` };
  };
  const end = await seriesWindow(url, ACCEPT_STEPS.flatMap((step) => Object.values(series(step))), { absentIsZero: true });
  return async () => {
    const grown = await end();
    if (!grown) return null;
    return Object.fromEntries(
      ACCEPT_STEPS.map((step) => {
        const { sum, count, fast } = series(step);
        const n = grown[count]!;
        return [step, { count: n, mean_ms: n ? Number(((grown[sum]! / n) * 1000).toFixed(1)) : null, over_50ms: n - grown[fast]! }];
      }),
    );
  };
}

/** The API's own time from its `Server-Timing: app;dur=<ms>` header (lib/metrics.ts), if sent. */
function serverTime(header: string | string[] | undefined): number | undefined {
  const match = /(?:^|,)\s*app;dur=([\d.]+)/.exec(Array.isArray(header) ? header.join(',') : (header ?? ''));
  return match ? Number(match[1]) : undefined;
}

/** Every connection sends again as soon as it is answered: throughput at saturation. */
async function closedLoop(target: Target, headers: Record<string, string>, options: { connections: number; duration: number; body: () => string }): Promise<LoadResult> {
  const result = await autocannon({
    url: `${target.url}/v1/conversations`,
    method: 'POST',
    headers,
    connections: options.connections,
    duration: options.duration,
    requests: [{ setupRequest: (request) => ({ ...request, body: options.body() }) }],
  });
  return {
    p50_ms: result.latency.p50,
    p90_ms: result.latency.p90,
    p99_ms: result.latency.p99,
    max_ms: result.latency.max,
    mean_ms: Number(result.latency.average.toFixed(2)),
    rps: Number(result.requests.average.toFixed(1)),
    requests: result.requests.total,
    non_2xx: result.non2xx,
    errors: result.errors,
  };
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
