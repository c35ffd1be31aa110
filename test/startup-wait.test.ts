import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/local-services/ports';
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
  let api: ChildProcess | undefined;
  let proxy: Awaited<ReturnType<typeof tcpProxy>> | undefined;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    api?.kill('SIGKILL');
    await proxy?.close();
    await h?.close();
  });

  it('waits for Elasticsearch, then starts', async () => {
    const [port, esPort] = [await freePort(), await freePort()];
    const blobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-startup-'));
    let output = '';
    api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        ELASTICSEARCH_URL: `http://127.0.0.1:${esPort}`,
        ELASTICSEARCH_INDEX_PREFIX: h.config.ELASTICSEARCH_INDEX_PREFIX,
        TEMPORAL_TASK_QUEUE: h.config.TEMPORAL_TASK_QUEUE,
        CAIRN_BLOB_DIR: blobDir,
        CAIRN_API_KEYS: `${h.keys.acme}=acme`,
      },
    });
    api.stdout!.on('data', (chunk) => (output += chunk));
    api.stderr!.on('data', (chunk) => (output += chunk));
    let exited: number | null | undefined;
    api.on('exit', (code) => (exited = code));

    await waitFor('the API to say it waits', async () => (/Elasticsearch at .* does not answer/.test(output) ? true : undefined), { timeoutMs: 60_000, intervalMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(exited).toBeUndefined();

    proxy = await tcpProxy(h.config.elasticsearchUrl, esPort);
    await waitFor('the API to be ready', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: 90_000,
      intervalMs: 300,
    }).catch((error) => {
      throw new Error(`${(error as Error).message}; its last lines:\n${output.trim().split('\n').slice(-8).join('\n')}`);
    });
    expect(exited).toBeUndefined();
    fs.rmSync(blobDir, { recursive: true, force: true });
  }, 180_000);
});
