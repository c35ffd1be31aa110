import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
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
 * process in that moment on purpose.)
 */
describe('crashes: killed API and worker processes lose no accepted ingest and store nothing twice', () => {
  let h: Harness;
  let queue: string;
  const running = new Map<'api' | 'worker', ChildProcess>();
  let output = '';

  beforeAll(async () => {
    h = await startHarness({ tenants: ['acme'] });
    // Its own task queue: the harness's in-process worker must not run these jobs.
    queue = `${h.config.TEMPORAL_TASK_QUEUE}-crash`;
  });
  afterAll(async () => {
    for (const child of running.values()) child.kill('SIGKILL');
    await deleteTaskQueueWorkflows(h.temporal.client, queue).catch(() => undefined);
    await h?.close();
  });

  it('every conversation answered 202 completes with its two memories, through three API and three worker kills', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const base = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      TEMPORAL_TASK_QUEUE: queue,
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
    };
    const ready = () => waitFor('the API to be ready', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined), { timeoutMs: 90_000, ignoreErrors: true });
    start('worker');
    start('api');
    await ready();

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

    // About eight conversations a second for 26 s; a kill every 4 s, alternating, each process back
    // half a second later (it then takes a few seconds to serve or poll again).
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
    for (const kind of ['api', 'worker', 'api', 'worker', 'api', 'worker'] as const) {
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      running.get(kind)!.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 500));
      start(kind);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    loading = false;
    await load;
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
    // Sixteen waits at a time: each is a long poll on the harness's one connection to Temporal.
    const progresses = await mapBounded(accepted, 16, ({ jobId }) => within(h.waitForJob('acme', jobId, 300_000), `job ${jobId}`, () => explain(jobId), 240_000));
    expect(progresses.filter((progress) => progress.status !== 'completed').map(({ job_id, status, errors }) => ({ job_id, status, errors }))).toEqual([]);

    await h.runtime.es.indices.refresh({ index: `${h.config.ELASTICSEARCH_INDEX_PREFIX}-*` });
    const found = await Promise.all(accepted.map(async ({ token }) => {
      const { status, body } = await h.api('POST', '/v1/search', { key: h.keys.acme, body: { query: token, mode: 'bm25', top_k: 20 } });
      expect(status).toBe(200);
      return (body.results as unknown[]).filter((result) => JSON.stringify(result).includes(token)).length;
    }));
    expect(found.filter((count) => count !== 2)).toEqual([]);

    // Nothing twice, also among the jobs whose answer the killed API never sent: two memories per job run.
    const jobsRun = await h.runtime.es.count({ index: h.runtime.indices.jobs, query: { term: { tenant: 'acme' } } });
    const memories = await h.runtime.es.count({ index: h.runtime.indices.memories, query: { term: { tenant: 'acme' } } });
    expect(jobsRun.count).toBeGreaterThanOrEqual(accepted.length);
    expect(memories.count).toBe(2 * jobsRun.count);
    expect(output).not.toMatch(/"level":(50|60)/);
  }, 420_000);
});
