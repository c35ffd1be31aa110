import { spawn, execFile, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BackfillRuns } from '../lib/backfill/runs';
import { IngestJobs } from '../lib/jobs';
import { freePort } from '../lib/local-services/ports';
import { slowFetch } from './support/faults';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';
import pino from 'pino';
import { temporalLogger } from '../worker/telemetry';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

describe('operations: API metrics, the worker process (JSON logs, Prometheus, graceful stop) and the CLI', () => {
  let h: Harness;
  let folder: string;

  beforeAll(async () => {
    // A "slow" send waits in its fetch stage, so `forget` meets it still running.
    h = await startHarness({ wrapActivities: slowFetch(8000) });
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-cli-'));
    fs.writeFileSync(path.join(folder, 'harbour.txt'), 'The harbour master of Porto retired in 2021 after thirty years.');
    fs.writeFileSync(path.join(folder, 'garden.md'), '# Garden\n\nLena grows tomatoes and basil on her balcony in Berlin.');
  });
  afterAll(async () => {
    await h?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('serves Prometheus metrics per route pattern, with errors counted, without authentication, and times every answer', async () => {
    const missing = await h.api('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000');
    const schedules = await h.api('GET', '/v1/schedules');
    // Answered before routing: a bad key, a body that is no JSON. Counted under their routes, not "unmatched".
    expect((await fetch(`${h.baseUrl}/v1/jobs/abc123`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${h.baseUrl}/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': 'application/json' }, body: '{"content":' })).status).toBe(400);
    // Every answer says how long the API itself took (W3C Server-Timing), errors included.
    for (const answer of [missing, schedules]) expect(answer.headers.get('server-timing')).toMatch(/^app;dur=\d+\.\d$/);
    const response = await fetch(`${h.baseUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/cairn_http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status="404"\} 1/);
    expect(text).toMatch(/cairn_http_requests_total\{method="GET",route="\/v1\/schedules",status="200"\} 1/);
    expect(text).toMatch(/cairn_http_request_errors_total\{method="GET",route="\/v1\/jobs\/:id",class="4xx"\} 2/);
    expect(text).toMatch(/cairn_http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status="401"\} 1/);
    expect(text).toMatch(/cairn_http_requests_total\{method="POST",route="\/v1\/documents",status="400"\} 1/);
    expect(text).toMatch(/cairn_http_request_duration_seconds_bucket\{le="0\.1",method="GET",route="\/v1\/schedules"\}/);
    expect(text).toMatch(/cairn_api_process_cpu_seconds_total/);
    for (const route of ['/healthz', '/readyz', '/livez']) expect((await fetch(`${h.baseUrl}${route}`)).status).toBe(200);
  });

  it('times the steps an accepted ingest waits on: the upload written and flushed, the start acknowledged', async () => {
    const steps = async () => {
      const text = await (await fetch(`${h.baseUrl}/metrics`)).text();
      const count = (step: string) => Number(new RegExp(`cairn_ingest_accept_step_seconds_count\\{step="${step}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
      return { write: count('upload_write'), flush: count('upload_flush'), start: count('start'), text };
    };
    const before = await steps();
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'The ferry to Madeira leaves at nine.' } });
    expect(accepted.status).toBe(202);
    // The upload is flushed before the answer; the start may be acknowledged after it (ACCEPT_START_WAIT_MS).
    const after = await waitFor('the start timed', async () => {
      const now = await steps();
      return now.start > before.start ? now : undefined;
    }, { timeoutMs: 20_000 });
    expect(after.write).toBe(before.write + 1);
    expect(after.flush).toBe(before.flush + 1);
    expect(after.text).toMatch(/cairn_ingest_accept_step_seconds_bucket\{le="2\.5",step="upload_flush"\} [1-9]/);
    await h.waitForJob('acme', accepted.body.job_id);
  });

  it('runs the worker process with JSON logs carrying workflow and job ids, Prometheus metrics, and a clean stop on SIGTERM', async () => {
    const queue = `${h.config.TEMPORAL_TASK_QUEUE}-process`;
    const metricsPort = await freePort();
    const worker: ChildProcess = spawn(TSX, ['worker/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        LOG_LEVEL: 'info',
        TEMPORAL_TASK_QUEUE: queue,
        ELASTICSEARCH_INDEX_PREFIX: h.config.ELASTICSEARCH_INDEX_PREFIX,
        CAIRN_BLOB_DIR: h.config.blobDir,
        CAIRN_WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    worker.stdout!.on('data', (chunk) => (output += chunk));
    worker.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    try {
      await waitFor('the worker to start', async () => (output.includes('"worker started"') ? true : undefined), { timeoutMs: 90_000, ignoreErrors: true });

      const jobs = new IngestJobs(h.temporal.client, h.runtime.blobs, { ...h.config, TEMPORAL_TASK_QUEUE: queue }, h.runtime.es);
      const job = await jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: 'Ops note: the nightly backup runs at 02:00 UTC.', surface: 'native' });
      await h.waitForJob('acme', job.jobId);
      expect((await jobs.progress('acme', job.jobId))?.status).toBe('completed');
      const backfill = await new BackfillRuns(h.temporal.client, queue).start('acme', { backfill: 'reembed', batch_size: 50, concurrency: 1, page_size: 500, pages_per_run: 20 });
      expect((await new BackfillRuns(h.temporal.client, queue).result('acme', backfill.id)).status).toBe('completed');
      // A URL refused as private: the caller's input, logged as such, with its reason and no stack.
      const refused = await jobs.start({ tenant: 'acme', kind: 'url', format: 'URL', sourceUrl: 'http://127.0.0.1:9/private', surface: 'native' });
      await h.waitForJob('acme', refused.jobId);

      const lines = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      const refusal = lines.find((line) => line.jobId === refused.jobId && line.activityType === 'fetchSource');
      expect(refusal).toMatchObject({ level: 30, msg: 'activity refused its input', refused: { code: 'bad_input', message: expect.stringMatching(/refused to fetch/) } });
      expect(JSON.stringify(refusal)).not.toMatch(/stack/);
      // The SDK's own report of the failed workflow carries the failure's message (it was "error": {}).
      const sdkFailure = await waitFor('the SDK to log the failed workflow', async () =>
        output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).find((line) => line.source === 'temporal' && line.workflowId === refused.workflowId && /failed/i.test(line.msg)),
      { timeoutMs: 10_000 });
      expect(sdkFailure.err?.message).toMatch(/refused to fetch/);
      const indexLog = lines.find((line) => line.activityType === 'indexMemories' && line.msg === 'activity completed');
      expect(indexLog).toMatchObject({ workflowId: job.workflowId, jobId: job.jobId, service: 'cairn-worker' });
      expect(typeof indexLog.durationMs).toBe('number');
      expect(lines.some((line) => line.activityType === 'reembedMemories' && line.workflowId === `backfill/acme/${backfill.id}`)).toBe(true);

      const metrics = await waitFor('worker metrics', async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return /cairn_memories_indexed/.test(text) ? text : undefined;
      }, { ignoreErrors: true });
      expect(metrics).toMatch(/cairn_activity_duration_ms_bucket\{.*activityType="indexMemories"/);
      expect(metrics).toMatch(/cairn_activity_duration_ms_bucket\{.*activityType="reembedMemories"/);
      expect(metrics).toMatch(/cairn_memories_indexed\w*\{[^}]*\} [1-9]/);
      // Parsing and local extraction took their turns on the CPU: each turn's wait is timed, and none waits now.
      expect(metrics).toMatch(/cairn_cpu_turn_wait_ms_count(\{[^}]*\})? [1-9]/);
      expect(metrics).toMatch(/cairn_cpu_turns_waiting(\{[^}]*\})? 0\n/);
      expect(metrics).toMatch(/temporal_activity_execution_latency/);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toMatch(/"worker stopped"/);
  });

  it('stops the API on SIGTERM without dropping a request that is still arriving, then refuses new ones', async () => {
    const port = await freePort();
    const api = spawn(TSX, ['api/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        TEMPORAL_TASK_QUEUE: h.config.TEMPORAL_TASK_QUEUE,
        ELASTICSEARCH_INDEX_PREFIX: h.config.ELASTICSEARCH_INDEX_PREFIX,
        CAIRN_BLOB_DIR: h.config.blobDir,
        CAIRN_API_KEYS: `${h.keys.acme}=acme`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    api.stdout!.on('data', (chunk) => (output += chunk));
    api.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => api.once('exit', (code) => resolve(code)));
    try {
      await waitFor('the API to be ready', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), { timeoutMs: 90_000, ignoreErrors: true });
      const body = JSON.stringify({ content: 'Draining note: this request was half-sent when the API was told to stop.', format: 'TXT' });
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = http.request(
          { host: '127.0.0.1', port, path: '/v1/documents', method: 'POST', headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => {
            let text = '';
            response.on('data', (chunk) => (text += chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body: text }));
          },
        );
        request.on('error', reject);
        request.write(body.slice(0, 20));
        setTimeout(() => {
          api.kill('SIGTERM');
          setTimeout(() => request.end(body.slice(20)), 500);
        }, 500);
      });
      // During its grace period (SHUTDOWN_GRACE_MS, 2 s) it still answers, readiness failing, so a
      // balancer stops sending before connections are refused.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
      const accepted = await answer;
      expect(accepted.status).toBe(202);
      const jobId = JSON.parse(accepted.body).job_id as string;
      expect((await h.waitForJob('acme', jobId)).status).toBe('completed');
      expect(await exited).toBe(0);
      await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
      expect(output).toMatch(/API shutting down/);
    } finally {
      if (api.exitCode === null) api.kill('SIGKILL');
    }
  });

  it("logs the SDK core's retry reports once a minute per kind, saying how many it left out, and every other line", () => {
    const lines: { msg: string; similar_left_out?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    let clock = 0;
    const logger = temporalLogger(log, () => clock);
    // An outage: each poller reports each retry.
    for (let i = 1; i <= 30; i++) logger.warn(`gRPC call poll_activity_task_queue retried ${i} times`, { sdkComponent: 'core' });
    logger.warn('gRPC call poll_workflow_task_queue retried 1 times', { sdkComponent: 'core' });
    logger.warn('Workflow failed', { sdkComponent: 'workflow' });
    logger.warn('Workflow failed', { sdkComponent: 'workflow' });
    clock = 61_000;
    logger.warn('gRPC call poll_activity_task_queue retried 31 times', { sdkComponent: 'core' });
    expect(lines.map((line) => [line.msg, line.similar_left_out])).toEqual([
      ['gRPC call poll_activity_task_queue retried 1 times', undefined],
      ['gRPC call poll_workflow_task_queue retried 1 times', undefined],
      ['Workflow failed', undefined],
      ['Workflow failed', undefined],
      ['gRPC call poll_activity_task_queue retried 31 times', 29],
    ]);
  });

  it('the CLI ingests a folder with progress, shows a job, searches and runs a backfill through the API', async () => {
    const env = { ...process.env, CAIRN_URL: h.baseUrl, CAIRN_API_KEY: h.keys.acme };
    const cli = (...args: string[]) => run(TSX, ['cli/main.ts', ...args], { cwd: ROOT, env, timeout: 90_000 });

    const ingested = await cli('--json', 'ingest', folder);
    const outcomes = JSON.parse(ingested.stdout) as { label: string; jobId: string; status: string; memories: number }[];
    expect(outcomes.map((o) => path.basename(o.label)).sort()).toEqual(['garden.md', 'harbour.txt']);
    for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'completed' });
    expect(outcomes.every((o) => o.memories > 0)).toBe(true);

    const shown = await cli('job', outcomes[0]!.jobId);
    expect(shown.stdout).toMatch(/completed/);
    expect(shown.stdout).toMatch(/index\s+completed/);

    const found = JSON.parse((await cli('--json', 'search', 'tomatoes', 'balcony', '--mode', 'bm25')).stdout);
    expect(JSON.stringify(found.results[0])).toMatch(/tomatoes/);

    const backfill = JSON.parse((await cli('--json', 'backfill', 'reembed')).stdout);
    expect(backfill).toMatchObject({ status: 'completed', kind: 'reembed' });
    expect(backfill.processed).toBeGreaterThanOrEqual(2);

    // URLs to import go in the request to this API (the global --url names the API, and the key goes only there).
    const imported = JSON.parse((await cli('--json', 'backfill', 'import', '--import-url', 'https://example.invalid/a', 'https://example.invalid/b', '--no-wait')).stdout);
    const importRun = await waitFor('the import backfill', async () => {
      const progress = await h.api('GET', `/v1/backfills/${imported.id}`);
      return progress.body.status === 'running' ? undefined : progress.body;
    });
    expect(importRun).toMatchObject({ kind: 'import', total: 2 });
    // Waited for, an import whose items failed says why and exits 1, as an ingest with a failed job does.
    await expect(cli('backfill', 'import', '--import-url', 'https://example.invalid/c')).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/completed: 0 processed, 0 skipped, 1 failed\n {2}url:https:\/\/example\.invalid\/c: \S/),
    });

    // A source shown and deleted; another forgotten by its id.
    const [first, second] = await Promise.all(outcomes.map(async (outcome) => (await h.api('GET', `/v1/jobs/${outcome.jobId}`)).body as { source_id: string }));
    expect(JSON.parse((await cli('--json', 'source', 'show', first!.source_id)).stdout)).toMatchObject({ id: first!.source_id, memory_count: expect.any(Number) });
    expect(JSON.parse((await cli('--json', 'source', 'delete', first!.source_id)).stdout).memories_deleted).toBeGreaterThan(0);
    await expect(cli('source', 'show', first!.source_id)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/404/) });
    await expect(cli('forget')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/name whom to forget/) });
    const forgotten = JSON.parse((await cli('--json', 'forget', '--source-id', second!.source_id)).stdout);
    expect(forgotten).toMatchObject({ sources_deleted: 1, refused: [], remaining: 0 });
    expect((await h.api('GET', `/v1/sources/${second!.source_id}`)).status).toBe(404);
    // A space's users, with their counts.
    const scoped = await h.api('POST', '/v1/documents', { body: { content: 'Heron maps the tide pools of the bay.', scope: { space_id: 'cli-space', user_id: 'heron-cli' } } });
    await h.waitForJob('acme', scoped.body.job_id);
    expect(JSON.parse((await cli('--json', 'scopes', 'user_id', '--space-id', 'cli-space')).stdout)).toMatchObject([{ value: 'heron-cli', memory_count: 1, source_count: 1 }]);
    expect((await cli('scopes', 'user_id', '--space-id', 'cli-space')).stdout).toMatch(/^heron-cli {2}1 memories from 1 sources, last \d{4}-/);
    expect((await cli('scopes', 'user_id', '--space-id', 'no-such-space')).stdout).toBe('no user_id values match these filters\n');
    await expect(cli('scopes', 'tenant')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/Allowed choices are .*user_id/) });
    // A user's source whose job is still running: left and named (exit 1), or with --wait waited for, then deleted.
    const slow = await h.api('POST', '/v1/documents', { body: { content: 'Otter counts the boats in Mallaig harbour.', scope: { user_id: 'otter' }, metadata: { test: 'slow' } } });
    await waitFor('the slow job listed', async () =>
      ((await h.api('GET', '/v1/jobs?page_size=50')).body.jobs as { job_id: string }[]).find((job) => job.job_id === slow.body.job_id), { timeoutMs: 10_000 });
    await expect(cli('forget', '--user-id', 'otter')).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining(`left ${slow.body.source_id}: job ${slow.body.job_id} still running`) });
    // The same exit with --json, which printed and exited 0.
    await expect(cli('--json', 'forget', '--user-id', 'otter')).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining(`"open_job_ids": [\n        "${slow.body.job_id}"`) });
    await expect(cli('forget', '--user-id', 'otter', '--wait', 'soon')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/--wait <seconds>.*a number of seconds/) });
    const waited = await cli('--json', 'forget', '--user-id', 'otter', '--wait', '60');
    expect(JSON.parse(waited.stdout)).toMatchObject({ sources_deleted: 1, memories_deleted: 1, refused: [], remaining: 0 });
    expect((await h.api('GET', `/v1/jobs/${slow.body.job_id}`)).body.status).toBe('completed');
    expect((await h.api('POST', '/v1/memories/list', { body: { filters: { user_id: 'otter' } } })).body.memories).toEqual([]);

    // A file the API refuses is exit 1, with --json too.
    const broken = path.join(folder, 'broken.json');
    fs.writeFileSync(broken, '{"not": json');
    await expect(cli('--json', 'ingest', broken)).rejects.toMatchObject({ code: 1, stdout: expect.stringMatching(/"status": "(failed|rejected)"/) });

    // Erasing a tenant: refused unless named twice, then everything of it gone (here a tenant of its own).
    const doomed = `cli-erased-${Date.now()}`;
    const key = (await h.api('POST', '/v1/admin/keys', { key: h.operatorKey, body: { tenant: doomed, permissions: ['ingest', 'read', 'search'] } })).body.key as string;
    const doomedJob = await h.api('POST', '/v1/documents', { key, body: { content: 'Ignatius Pell carves chess sets from pear wood.' } });
    expect((await h.waitForJob(doomed, doomedJob.body.job_id)).status).toBe('completed');
    const operator = { ...env, CAIRN_API_KEY: h.operatorKey };
    await expect(run(TSX, ['cli/main.ts', 'erase-tenant', doomed, '--confirm', 'acme'], { cwd: ROOT, env: operator, timeout: 90_000 })).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/400/) });
    const erased = await run(TSX, ['cli/main.ts', 'erase-tenant', doomed, '--confirm', doomed], { cwd: ROOT, env: operator, timeout: 90_000 });
    expect(erased.stdout).toMatch(new RegExp(`tenant ${doomed} erased: 1 sources, [1-9]\\d* memories, .* 1 keys`));
    expect((await h.api('GET', '/v1/sources', { key })).status).toBe(401);

    // An API refusal is a clear message and a non-zero exit, not a stack trace.
    await expect(cli('job', 'no-such-job')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/404/) });
    await expect(cli('--key', 'wrong', 'search', 'x')).rejects.toMatchObject({ stderr: expect.stringMatching(/401/) });
  });
});
