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
import { lowerCpuPriority, stopProcessGroup } from '../lib/local-services/process';
import { connectTemporal, isPolled } from '../lib/temporal/connect';

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

function startNode(name: string, entry: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
  }
  return child;
}

/** Resolves once the worker process `pid` itself polls the task queue. */
async function workerPolling(config: Config, pid: number, stopped: () => boolean): Promise<void> {
  const temporal = await connectTemporal(config);
  try {
    while (!stopped()) {
      if (await isPolled(temporal, config.TEMPORAL_NAMESPACE, config.TEMPORAL_TASK_QUEUE, `${pid}@`)) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await temporal.connection.close();
  }
}

/** Resolves once the API answers its readiness probe (it checks Temporal and Elasticsearch too). */
async function apiReady(port: number, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
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
  const worker = startNode('worker', 'worker/main.ts', env);
  // On one machine the API, Temporal and Elasticsearch answer first; ingestion takes what CPU they leave.
  if (worker.pid !== undefined && config.CAIRN_WORKER_NICE > 0) lowerCpuPriority(worker.pid, config.CAIRN_WORKER_NICE);
  const children = [worker, startNode('api', 'api/main.ts', env)];

  log(`API              http://127.0.0.1:${config.PORT}   (GET /healthz)`);
  log(`Temporal         ${config.temporalAddress}   Web UI http://127.0.0.1:${config.TEMPORAL_UI_PORT}`);
  log(`Elasticsearch    ${config.elasticsearchUrl}`);
  log(`API key          ${apiKey}   (tenant "default"; set CAIRN_API_KEY to choose your own)`);
  log('Ctrl-C stops everything.');

  let stopping = false;
  // The API answers as soon as it listens; the worker takes a few seconds more (it bundles the
  // workflows), and jobs accepted before then wait for it. Said once both are up.
  const stopped = () => stopping;
  void Promise.all([apiReady(config.PORT, stopped), workerPolling(config, worker.pid!, stopped)]).then(
    () => !stopping && log(`Ready in ${(performance.now() / 1000).toFixed(1)} s: the API answers and the worker polls ${config.TEMPORAL_TASK_QUEUE}.`),
    (error) => log(`could not tell whether the worker is polling: ${error instanceof Error ? error.message : error}`),
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
