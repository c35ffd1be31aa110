import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/local-services/ports';
import { createLogger } from '../lib/logger';
import { createRuntime } from '../lib/runtime';
import { startHarness, type Harness } from './support/harness';
import { tcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

/**
 * An API started while Elasticsearch is down (its address answers nothing yet) waits for it, saying
 * so, instead of exiting; once the address answers (a proxy to the local node, opened late) it starts
 * and is ready.
 */
describe('an API started during an outage', () => {
  let h: Harness;
  const apis: ChildProcess[] = [];
  const blobDirs: string[] = [];
  let proxy: Awaited<ReturnType<typeof tcpProxy>> | undefined;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await readOnly(false);
    for (const api of apis) api.kill('SIGKILL');
    await proxy?.close();
    for (const dir of blobDirs) fs.rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  /** A cluster-wide read-only block, as an operator sets it (transient: gone with a restart of the node). */
  const readOnly = (on: boolean) => h?.runtime.es.cluster.putSettings({ transient: { 'cluster.blocks.read_only': on ? true : null } });

  /** The API process (api/main.ts) on a port of its own; `output` gathers what it says, `exited` its exit code. */
  async function startApi(env: { ELASTICSEARCH_URL?: string; ELASTICSEARCH_INDEX_PREFIX?: string } = {}) {
    const port = await freePort();
    const blobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-startup-'));
    blobDirs.push(blobDir);
    const child = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        ELASTICSEARCH_URL: h.config.elasticsearchUrl,
        ELASTICSEARCH_INDEX_PREFIX: h.config.ELASTICSEARCH_INDEX_PREFIX,
        TEMPORAL_TASK_QUEUE: h.config.TEMPORAL_TASK_QUEUE,
        CAIRN_BLOB_DIR: blobDir,
        CAIRN_API_KEYS: `${h.keys.acme}=acme`,
        ...env,
      },
    });
    apis.push(child);
    const api = { port, output: '', exited: undefined as number | null | undefined, call: h.apiAt(`http://127.0.0.1:${port}`) };
    child.stdout!.on('data', (chunk) => (api.output += chunk));
    child.stderr!.on('data', (chunk) => (api.output += chunk));
    child.on('exit', (code) => (api.exited = code));
    return api;
  }

  async function untilReady(api: Awaited<ReturnType<typeof startApi>>) {
    await waitFor('the API to be ready', async () => {
      if (api.exited !== undefined) throw new Error(`the API exited (${api.exited}): ${api.output.trim().split('\n').slice(-8).join('\n')}`);
      return (await fetch(`http://127.0.0.1:${api.port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
    }, { timeoutMs: 90_000, intervalMs: 300 }).catch((error) => {
      throw new Error(`${(error as Error).message}; its last lines:\n${api.output.trim().split('\n').slice(-8).join('\n')}`);
    });
  }

  it('waits for Elasticsearch, then starts', async () => {
    const esPort = await freePort();
    const api = await startApi({ ELASTICSEARCH_URL: `http://127.0.0.1:${esPort}` });
    await waitFor('the API to say it waits', async () => (/Elasticsearch at .* does not answer/.test(api.output) ? true : undefined), { timeoutMs: 60_000, intervalMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(api.exited).toBeUndefined();

    proxy = await tcpProxy(h.config.elasticsearchUrl, esPort);
    await untilReady(api);
  }, 180_000);

  it('starts under a read-only cluster: serves what is stored, answers writes 503 naming the block, and puts its indices in place once it lifts', async () => {
    const sent = await h.api('POST', '/v1/documents', { body: { content: 'Mirela restores old clocks in her workshop in Cluj.' } });
    expect((await h.waitForJob('acme', sent.body.job_id)).status).toBe('completed');
    const freshPrefix = `${h.config.ELASTICSEARCH_INDEX_PREFIX}-fresh`;
    await readOnly(true);
    // Started now: an API over indices that exist (a restart), one over none yet (a first start), a worker.
    const restarted = await startApi();
    const first = await startApi({ ELASTICSEARCH_INDEX_PREFIX: freshPrefix });
    let workerStarted = false;
    const worker = createRuntime({ ...h.config, ELASTICSEARCH_INDEX_PREFIX: freshPrefix }, createLogger('error', 'read-only-test'), 'worker').then((runtime) => {
      workerStarted = true;
      return runtime;
    });
    await Promise.all([untilReady(restarted), untilReady(first)]);

    const hits = await restarted.call('POST', '/v1/search', { body: { query: 'clocks workshop Cluj', mode: 'bm25' } });
    expect(hits.status).toBe(200);
    const memory = hits.body.results.find((hit: { provenance: { job_id: string } }) => hit.provenance.job_id === sent.body.job_id);
    expect(memory).toBeDefined();
    const blocked = /Elasticsearch refuses writes now \(.*cluster read-only/;
    const edit = await restarted.call('PATCH', `/v1/memories/${memory.id}`, { body: { content: 'Mirela restores clocks and barometers.' } });
    expect(edit.status).toBe(503);
    expect(edit.headers.get('retry-after')).toBe('5');
    expect(edit.body.error.message).toMatch(blocked);

    // No index to read yet: every request says why, in its surface's shape.
    const listed = await first.call('GET', '/v1/sources');
    expect(listed.status).toBe(503);
    expect(listed.body.error.message).toMatch(/Elasticsearch refuses writes now \(.*cluster read-only.*\): Cairn's indices are created once the block lifts/);
    const vendor = await first.call('POST', '/compat/crosmos/api/v1/search', { body: { query: 'clocks' } });
    expect(vendor.status).toBe(503);
    expect(vendor.body.detail).toMatch(blocked);
    expect(workerStarted).toBe(false);

    await readOnly(false);
    expect((await first.call('GET', '/v1/sources')).status).toBe(200);
    expect((await h.runtime.es.indices.existsAlias({ name: `${freshPrefix}-memories` }))).toBe(true);
    await (await worker).close();
    expect((await restarted.call('PATCH', `/v1/memories/${memory.id}`, { body: { content: 'Mirela restores clocks and barometers.' } })).status).toBe(200);
    expect([restarted.exited, first.exited]).toEqual([undefined, undefined]);
    await h.runtime.es.indices.delete({ index: `${freshPrefix}-*` });
  }, 180_000);
});
