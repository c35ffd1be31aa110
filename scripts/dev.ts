/**
 * `npm run dev`: everything for local use in one terminal — Temporal dev server (Web UI), a local
 * Elasticsearch node, the Cairn worker and the API. Ctrl-C stops all of it, in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { loadConfigOrExit, type Config } from '../lib/config';
import { ensureLocalServices } from '../lib/local-services';
import { lowerCpuPriority, stopProcessGroup, waitUntilReady } from '../lib/local-services/process';
import { connectTemporal, isPolled } from '../lib/temporal/connect';
import { WORKER_NODE_FLAGS } from '../worker/node-flags';

const root = path.resolve(__dirname, '..');

/** A stable local key, kept in the data folder, when CAIRN_API_KEY is not set. */
function localApiKey(dataDir: string): string {
  const file = path.join(dataDir, 'dev-api-key');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const key = `cairn_dev_${randomBytes(16).toString('hex')}`;
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

function startNode(name: string, entry: string, env: NodeJS.ProcessEnv, nodeFlags: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
  }
  return child;
}

/**
 * Resolves once the API answers its readiness probe (it checks Temporal and Elasticsearch too) and the
 * worker process itself polls the task queue (a worker stopped a moment ago is still listed a while),
 * or once `stopped()`.
 */
async function bothReady(config: Config, worker: ChildProcess, api: ChildProcess, stopped: () => boolean): Promise<void> {
  const temporal = await connectTemporal(config);
  const within = { timeoutMs: 5 * 60_000, intervalMs: 250, onTimeout: () => 'Its output above says why.' };
  try {
    await Promise.all([
      waitUntilReady('the API', async () => stopped() || (await fetch(`http://127.0.0.1:${config.PORT}/readyz`)).ok, within, api),
      waitUntilReady('the worker', async () => stopped() || isPolled(temporal, config.TEMPORAL_NAMESPACE, config.TEMPORAL_TASK_QUEUE, `${worker.pid}@`), within, worker),
    ]);
  } finally {
    await temporal.connection.close();
  }
}

async function main() {
  const config = loadConfigOrExit();
  const log = (line: string) => console.log(`[cairn] ${line}`);
  const services = await ensureLocalServices(config, log);

  const apiKey = process.env.CAIRN_API_KEY || localApiKey(config.CAIRN_DATA_DIR);
  const env = {
    ...process.env,
    CAIRN_API_KEY: apiKey,
    TEMPORAL_ADDRESS: config.temporalAddress,
    ELASTICSEARCH_URL: config.elasticsearchUrl,
    CAIRN_DATA_DIR: config.CAIRN_DATA_DIR,
  };
  const worker = startNode('worker', 'worker/main.ts', env, WORKER_NODE_FLAGS);
  // On one machine the API, Temporal and Elasticsearch answer first; ingestion takes what CPU they leave.
  if (worker.pid !== undefined && config.CAIRN_WORKER_NICE > 0) lowerCpuPriority(worker.pid, config.CAIRN_WORKER_NICE);
  const api = startNode('api', 'api/main.ts', env);
  const children = [worker, api];

  log(`API              http://127.0.0.1:${config.PORT}   (GET /healthz)`);
  log(`Temporal         ${config.temporalAddress}   Web UI http://127.0.0.1:${config.TEMPORAL_UI_PORT}`);
  log(`Elasticsearch    ${config.elasticsearchUrl}`);
  log(`API key          ${apiKey}   (tenant "default"; set CAIRN_API_KEY to choose your own)`);
  log('Ctrl-C stops everything.');

  let stopping = false;
  // The API answers as soon as it listens; the worker takes a few seconds more (it bundles the
  // workflows), and jobs accepted before then wait for it. Said once both are up.
  void bothReady(config, worker, api, () => stopping).then(
    () => !stopping && log(`Ready in ${(performance.now() / 1000).toFixed(1)} s: the API answers and the worker polls ${config.TEMPORAL_TASK_QUEUE}.`),
    (error) => !stopping && log(`not ready: ${error instanceof Error ? error.message : error}`),
  );
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    await Promise.all(children.map((child) => stopProcessGroup(child)));
    await services.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  for (const child of children) {
    child.on('exit', (code) => {
      if (!stopping) {
        log(`a Cairn process exited with code ${code}; stopping the rest.`);
        void stopAll(code ?? 1);
      }
    });
  }
}

main().catch((error) => {
  console.error(`[cairn] ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
