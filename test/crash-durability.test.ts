import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import { createElasticsearchClient } from '../lib/elasticsearch/client';
import { isElasticsearchUp, startElasticsearch } from '../lib/local-services/elasticsearch';
import { freePort } from '../lib/local-services/ports';
import { startTemporal } from '../lib/local-services/temporal';
import { waitUntilReady, type ManagedProcess } from '../lib/local-services/process';
import { mapBounded } from '../lib/map-bounded';
import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { startHarness, type Harness } from './support/harness';
import { waitFor, within } from './support/wait';

const ROOT = path.resolve(__dirname, '..');

/**
 * "Anything answered 2xx is never lost", with real crashes: an API process and a worker process are
 * killed with SIGKILL in turn while conversations keep arriving, and each is started again. Every
 * conversation answered 202 must complete, once: its two turns are two searchable memories, and no
 * job stored anything twice (the stages a killed worker had run are run again, and write the same
 * documents, as their ids derive from the content). Requests the dead API could not answer are the
 * client's to send again; they are not counted. (A kill rarely lands in the moment after a 202 that
 * was answered from the start's record before Temporal acknowledged it: api-accept-pending stops a
 * process in that moment on purpose.) The same holds when the Temporal server or the Elasticsearch node
 * is killed and started again on its data: a server of the test's own, as every other suite shares the
 * local ones.
 */
describe('crashes: killed API, worker, Temporal and Elasticsearch processes lose no accepted ingest and store nothing twice', () => {
  let h: Harness;
  /** The API and worker now serving, by kind; every process started, for the clean-up. */
  const running = new Map<'api' | 'worker', ChildProcess>();
  const started = new Set<ChildProcess>();
  const queues: { queue: string; temporalAddress?: string }[] = [];
  let output = '';

  beforeAll(async () => {
    h = await startHarness({ tenants: ['acme'] });
  });
  afterAll(async () => {
    for (const child of started) child.kill('SIGKILL');
    for (const { queue, temporalAddress } of queues) {
      if (temporalAddress) continue; // a server of the test's own, gone with its data
      await deleteTaskQueueWorkflows(h.temporal.client, queue).catch(() => undefined);
    }
    await h?.close();
  });

  /**
   * An API and a worker as processes of their own, on a task queue of their own (the harness's
   * in-process worker must not run these jobs), against `temporalAddress` or the shared server.
   */
  async function cairnProcesses(name: string, { temporalAddress, elasticsearchUrl }: { temporalAddress?: string; elasticsearchUrl?: string } = {}) {
    const queue = `${h.config.TEMPORAL_TASK_QUEUE}-${name}`;
    queues.push({ queue, temporalAddress });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      TEMPORAL_TASK_QUEUE: queue,
      ...(temporalAddress ? { TEMPORAL_ADDRESS: temporalAddress } : {}),
      ...(elasticsearchUrl ? { ELASTICSEARCH_URL: elasticsearchUrl } : {}),
      ELASTICSEARCH_INDEX_PREFIX: h.config.ELASTICSEARCH_INDEX_PREFIX,
      CAIRN_BLOB_DIR: h.config.blobDir,
      CAIRN_API_KEYS: `${h.keys.acme}=acme`,
      // No Prometheus endpoint: another worker (a running `npm run dev`) may hold the default port,
      // and a worker that cannot bind it does not start.
      CAIRN_WORKER_METRICS_ADDRESS: '',
    };
    // Node itself with tsx's loader (not the tsx command, which runs Node as its child): the process
    // killed is the one serving.
    const start = (kind: 'api' | 'worker') => {
      const child = spawn(process.execPath, ['--import', 'tsx', `${kind}/main.ts`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      running.set(kind, child);
      started.add(child);
    };
    // An API that exits (it could not bind its port, say) fails the wait at once, with what it printed.
    const ready = () =>
      waitUntilReady('the API', async () => (await fetch(`${base}/readyz`)).status === 200, {
        timeoutMs: 90_000,
        intervalMs: 300,
        onTimeout: () => `Its last lines:\n${output.trim().split('\n').slice(-10).join('\n')}`,
      }, running.get('api'));
    const stop = () => {
      for (const child of running.values()) child.kill('SIGKILL');
      running.clear();
    };
    const api = h.apiAt(base);
    /** A job's status as a client reads it from this API, once it has finished. */
    const finished = (jobId: string) =>
      waitFor(`job ${jobId} to finish`, async () => {
        const { body } = await api('GET', `/v1/jobs/${jobId}`);
        return ['completed', 'failed', 'cancelled'].includes(body?.status) ? (body as { status: string }) : undefined;
      }, { timeoutMs: 240_000, intervalMs: 500, ignoreErrors: true });
    return { base, api, finished, start, ready, stop };
  }

  /**
   * About eight conversations a second, each with a token of its own, while `meanwhile` runs (and 2 s
   * after): what was answered 202, what was refused, and how many got no answer at all.
   */
  async function loadWhile(base: string, meanwhile: () => Promise<void>) {
    const accepted: { jobId: string; token: string }[] = [];
    const refused: number[] = [];
    let unanswered = 0;
    let sent = 0;
    const send = async () => {
      const token = `locker${sent++}q${Math.random().toString(36).slice(2, 8)}`;
      try {
        const response = await fetch(`${base}/v1/conversations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            session_id: `crash-${token}`,
            messages: [
              { role: 'user', content: `My locker code is ${token}, please keep it.` },
              { role: 'assistant', content: `Kept: your locker code is ${token}.` },
            ],
          }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await response.json()) as { job_id: string };
        if (response.status === 202) accepted.push({ jobId: body.job_id, token });
        else refused.push(response.status);
      } catch {
        unanswered += 1; // the API was down or died mid-request: no answer, no promise
      }
    };
    let loading = true;
    const inFlight = new Set<Promise<void>>();
    const load = (async () => {
      while (loading) {
        const request = send().finally(() => inFlight.delete(request));
        inFlight.add(request);
        await new Promise((resolve) => setTimeout(resolve, 125));
      }
      await Promise.all(inFlight);
    })();
    await meanwhile();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    loading = false;
    await load;
    return { accepted, refused, unanswered };
  }

  /**
   * Five seconds into the load, a service is killed with SIGKILL (every process of its group), and
   * started again on its data once `down` has passed.
   */
  async function killAndRestart(service: ManagedProcess, down: () => Promise<unknown>, restart: () => Promise<ManagedProcess>): Promise<ManagedProcess> {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const exited = new Promise((resolve) => service.child.once('exit', resolve));
    process.kill(-service.child.pid!, 'SIGKILL');
    await exited;
    await down();
    return restart();
  }

  /**
   * Every accepted conversation completed, and its token is in exactly its two memories; the
   * memories index holds two per job run, also among jobs whose answer was never sent.
   */
  async function expectEachStoredOnce(
    accepted: { jobId: string; token: string }[],
    finished: (jobId: string) => Promise<{ status: string }>,
    where: { api: Harness['api']; es: Client } = { api: h.api, es: h.runtime.es },
  ) {
    // Sixteen waits at a time: each is a long poll on one connection to Temporal.
    const outcomes = await mapBounded(accepted, 16, async ({ jobId }) => ({ jobId, status: (await finished(jobId)).status }));
    expect(outcomes.filter(({ status }) => status !== 'completed')).toEqual([]);

    await where.es.indices.refresh({ index: `${h.config.ELASTICSEARCH_INDEX_PREFIX}-*` });
    const found = await Promise.all(accepted.map(async ({ token }) => {
      const { status, body } = await where.api('POST', '/v1/search', { key: h.keys.acme, body: { query: token, mode: 'bm25', top_k: 20 } });
      expect(status).toBe(200);
      return (body.results as unknown[]).filter((result) => JSON.stringify(result).includes(token)).length;
    }));
    expect(found.filter((count) => count !== 2)).toEqual([]);

    const jobsRun = await where.es.count({ index: h.runtime.indices.jobs, query: { term: { tenant: 'acme' } } });
    const memories = await where.es.count({ index: h.runtime.indices.memories, query: { term: { tenant: 'acme' } } });
    expect(jobsRun.count).toBeGreaterThanOrEqual(accepted.length);
    expect(memories.count).toBe(2 * jobsRun.count);
  }

  it('every conversation answered 202 completes with its two memories, through three API and three worker kills', async () => {
    const { base, finished, start, ready, stop } = await cairnProcesses('crash');
    start('worker');
    start('api');
    await ready();
    // A kill every 4 s, alternating, each process back half a second later (it then takes a few
    // seconds to serve or poll again).
    const { accepted, refused, unanswered } = await loadWhile(base, async () => {
      for (const kind of ['api', 'worker', 'api', 'worker', 'api', 'worker'] as const) {
        await new Promise((resolve) => setTimeout(resolve, 4_000));
        running.get(kind)!.kill('SIGKILL');
        await new Promise((resolve) => setTimeout(resolve, 500));
        start(kind);
      }
    });
    await ready();

    // The load ran on both sides of every kill, and nothing was refused for what it was.
    expect(accepted.length).toBeGreaterThan(60);
    expect(unanswered).toBeGreaterThan(0);
    expect(refused).toEqual([]);

    // A job that does not finish is named with what its workflow and its start record say.
    const explain = async (jobId: string) => {
      const described = await h.jobs.handle('acme', jobId).describe().then(
        ({ status, taskQueue, raw }) => ({ status: status.name, taskQueue, pendingActivities: raw.pendingActivities?.map((activity) => `${activity.activityType?.name} attempt ${activity.attempt}: ${activity.lastFailure?.message ?? ''}`) }),
        (error: Error) => ({ error: error.message }),
      );
      const record = (await h.jobs.pendingStarts('acme')).find((pending) => pending.workflowInput.jobId === jobId);
      const lastLines = output.trim().split('\n').slice(-5);
      return { jobId, described, startRecord: record ?? null, lastLines };
    };
    // Read as a client reads it, from the API: the test's own view (h.jobs) has no acceptance journal, so
    // a job whose API was killed between its journal entry and its start would read there as unknown
    // until the restarted API's sweep starts it (30 s on), where the API reads it as queued. CI saw the
    // test's view answer one accepted job as unknown once; the cause was not reproduced (0 unstarted
    // jobs after the load in 3 runs here).
    await expectEachStoredOnce(accepted, (jobId) => within(finished(jobId), `job ${jobId}`, () => explain(jobId), 240_000));
    expect(output).not.toMatch(/"level":(50|60)/);
    stop();
  }, 420_000);

  it('every conversation answered 202 completes with its two memories when the Temporal server is killed and started again', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-crash-temporal-'));
    const options = {
      port: await freePort(),
      uiPort: await freePort(),
      metricsPort: await freePort(),
      namespace: h.config.TEMPORAL_NAMESPACE,
      cacheDir: h.config.CAIRN_CACHE_DIR,
      dataDir,
      log: () => undefined,
    };
    let temporal: ManagedProcess = await startTemporal(options);
    try {
      const { base, finished, start, ready, stop } = await cairnProcesses('temporal-crash', { temporalAddress: `127.0.0.1:${options.port}` });
      start('worker');
      start('api');
      await ready();
      // Down for about 5 s, then the same server on the same database: a start acknowledged before the
      // kill is in it (SQLite in WAL mode survives a process crash); the requests meanwhile wait for it.
      const { accepted, refused, unanswered } = await loadWhile(base, async () => {
        temporal = await killAndRestart(temporal, () => new Promise((resolve) => setTimeout(resolve, 5_000)), () => startTemporal(options));
        await new Promise((resolve) => setTimeout(resolve, 6_000));
      });
      expect(accepted.length).toBeGreaterThan(80);
      expect({ refused, unanswered }).toEqual({ refused: [], unanswered: 0 });

      // Read as a client would: the API's job status, from the workflow (or the start's record while a
      // start still waits for the next sweep).
      await expectEachStoredOnce(accepted, finished);
      // Warnings while the server is away (the SDK's retries), no error.
      expect(output).not.toMatch(/"level":(50|60)/);
      stop();
    } finally {
      await temporal.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 420_000);

  it('every conversation answered 202 completes with its two memories when Elasticsearch is killed and started again', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-crash-elasticsearch-'));
    // Reachable by the user Elasticsearch runs as when the test runs as root (its data then stays here).
    fs.chmodSync(dataDir, 0o755);
    const port = await freePort();
    const options = { url: `http://127.0.0.1:${port}`, port, cacheDir: h.config.CAIRN_CACHE_DIR, dataDir, heap: '384m', jit: 'quick' as const, log: () => undefined };
    let elasticsearch: ManagedProcess = await startElasticsearch(options);
    const es = createElasticsearchClient(options.url);
    try {
      // The local node's default JIT (ELASTICSEARCH_JIT=quick) reaches its JVM: C1 only.
      const { nodes } = await es.nodes.info({ metric: 'jvm' });
      expect(Object.values(nodes)[0]!.jvm?.input_arguments).toContain('-XX:TieredStopAtLevel=1');
      const { base, api, finished, start, ready, stop } = await cairnProcesses('elasticsearch-crash', { elasticsearchUrl: options.url });
      start('worker');
      start('api');
      await ready();
      // Killed with every process of it, and started again on its data once it is gone. An ingest
      // needs only Temporal and the upload to be accepted; the jobs' stages wait for the node.
      const { accepted, refused, unanswered } = await loadWhile(base, async () => {
        const portFree = () => waitFor('the killed node to let go of its port', async () => ((await isElasticsearchUp(options.url)) ? undefined : true));
        elasticsearch = await killAndRestart(elasticsearch, portFree, () => startElasticsearch(options));
        await new Promise((resolve) => setTimeout(resolve, 4_000));
      });
      expect(accepted.length).toBeGreaterThan(80);
      expect({ refused, unanswered }).toEqual({ refused: [], unanswered: 0 });
      await expectEachStoredOnce(accepted, finished, { api, es });
      expect(output).not.toMatch(/"level":(50|60)/);
      stop();
    } finally {
      await es.close();
      await elasticsearch.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 420_000);
});
