import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/local-services/ports';
import { waitFor } from './support/wait';

/** The pids below `pid` (Linux: ps). */
function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const below: number[] = [];
  const visit = (parent: number) => table.filter(([, ppid]) => ppid === parent).forEach(([child]) => (below.push(child), visit(child)));
  visit(pid);
  return below;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A process manager stops `npm run dev` with SIGTERM to npm: the long-running scripts exec their
 * process, so the signal reaches it and it stops the API and worker in order (a shell between them
 * would die alone and leave the stack running, orphaned). Temporal and Elasticsearch are the test
 * run's, reused, so stopping it stops nothing else; its indices and task queue are its own.
 */
describe('npm run dev under SIGTERM', () => {
  const prefix = `npm-signals-${process.pid}`;
  afterAll(async () => {
    await fetch(`http://127.0.0.1:${process.env.ELASTICSEARCH_PORT ?? 9200}/${prefix}-*`, { method: 'DELETE' }).catch(() => undefined);
  });

  it('stops the API and the worker when npm is sent SIGTERM', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-signals-'));
    const [apiPort, metricsPort] = [await freePort(), await freePort()];
    const npm = spawn('npm', ['run', 'dev'], {
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(apiPort),
        CAIRN_DATA_DIR: dataDir,
        CAIRN_API_KEY: 'cairn_npm_signals_key',
        ELASTICSEARCH_INDEX_PREFIX: prefix,
        TEMPORAL_TASK_QUEUE: prefix,
        CAIRN_WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      },
    });
    let output = '';
    npm.stdout!.on('data', (chunk) => (output += chunk));
    npm.stderr!.on('data', (chunk) => (output += chunk));
    let children: number[] = [];
    try {
      await waitFor('npm run dev to be ready', async () => (/Ready in/.test(output) ? true : undefined), { timeoutMs: 120_000, intervalMs: 200 });
      children = descendants(npm.pid!);
      expect(children.length).toBeGreaterThan(2);
      npm.kill('SIGTERM');
      await waitFor('every process npm started to exit', async () => (children.every((pid) => !alive(pid)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
      expect(output).toMatch(/\[cairn\] stopping/);
    } finally {
      // Whatever is left (orphaned, should the signal not have reached it) goes.
      for (const pid of [...children, ...descendants(npm.pid!)].filter(alive)) process.kill(pid, 'SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 200_000);
});
