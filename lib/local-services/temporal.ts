import fs from 'node:fs';
import path from 'node:path';
import { CAIRN_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { isPortOpen } from './ports';
import { runCapture, runVisible, startLogged, tailFile, waitUntilReady, type ManagedProcess } from './process';

/**
 * The Temporal CLI dev server (frontend, Web UI, SQLite persistence), built from Go modules.
 * v1.5.1 is the newest tag `go install` accepts: later tags carry a `replace` directive.
 */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

export interface LocalTemporalOptions {
  port: number;
  uiPort: number;
  /** Prometheus metrics of the server itself (persistence latency, task queues) at /metrics. */
  metricsPort: number;
  namespace: string;
  cacheDir: string;
  dataDir: string;
  log?: (line: string) => void;
}

export async function installTemporalCli(cacheDir: string, log = console.log): Promise<string> {
  const binDir = path.join(cacheDir, 'bin');
  const binary = path.join(binDir, 'temporal');
  const marker = path.join(binDir, 'temporal.version');
  // `go install` builds report "0.0.0-DEV", so the installed tag is recorded beside the binary.
  if (fs.existsSync(binary) && fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').trim() === TEMPORAL_CLI_VERSION) {
    return binary;
  }
  fs.mkdirSync(binDir, { recursive: true });
  log(`Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (first run only, a few minutes)…`);
  await runVisible('go', ['install', '-v', MODULE], {
    env: { ...process.env, GOBIN: binDir, GOFLAGS: `${process.env.GOFLAGS ?? ''} -mod=mod`.trim() },
  });
  await runCapture(binary, ['--version']);
  fs.writeFileSync(marker, `${TEMPORAL_CLI_VERSION}\n`);
  return binary;
}

export async function startTemporal(options: LocalTemporalOptions): Promise<ManagedProcess> {
  const log = options.log ?? console.log;
  const binary = await installTemporalCli(options.cacheDir, log);
  fs.mkdirSync(options.dataDir, { recursive: true });
  const dbFile = path.join(options.dataDir, 'temporal.sqlite');
  const logFile = path.join(options.dataDir, 'temporal.log');
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--ui-port',
    String(options.uiPort),
    '--metrics-port',
    String(options.metricsPort),
    '--db-filename',
    dbFile,
    '--namespace',
    options.namespace,
    '--log-level',
    'warn',
    // WAL with synchronous=NORMAL: a committed start survives a crash of any process (only an OS
    // crash or power loss can roll back the last transactions), and workflow starts go from ~35 ms
    // to ~5 ms p50 on a 2-core machine — the API's acceptance latency is mostly this write.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    // One partition per task queue: a single node gains nothing from spreading a queue, and with the
    // default four a task often lands where no poller waits, so it is written to SQLite and read back
    // instead of handed straight to the worker. With the pipeline running beside the API (bench:api),
    // acceptance p99 fell from 160–200 ms to about 80 ms.
    '--dynamic-config-value',
    'matching.numTaskqueueReadPartitions=1',
    '--dynamic-config-value',
    'matching.numTaskqueueWritePartitions=1',
    // The dev server turns on a search-attribute cache refresh on every read, so new attributes show
    // at once while one experiments; each refresh is a database read, and SQLite has one connection
    // that every persistence call queues for. Cairn registers its attributes on this command line,
    // before the server answers, so the cache is never stale for them. Measured with bench:api and the
    // pipeline running: about 7 of these reads per accepted job, a fifth of the connection's time.
    '--dynamic-config-value',
    'system.forceSearchAttributesCacheRefreshOnRead=false',
    // The history queues record how far they have processed every 2 s, not 30: a deleted closed
    // workflow (benches and tests clean up theirs, lib/temporal/cleanup.ts) waits for that record and
    // was gone after ~31 s, now ~4.6 s; acknowledged tasks leave the task tables as soon. One small
    // write per queue every 2 s, against hundreds per second under load.
    '--dynamic-config-value',
    'history.transferProcessorUpdateAckInterval="2s"',
    '--dynamic-config-value',
    'history.visibilityProcessorUpdateAckInterval="2s"',
    ...CAIRN_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
  ];
  log(`Starting Temporal dev server on 127.0.0.1:${options.port} (Web UI http://127.0.0.1:${options.uiPort}, metrics http://127.0.0.1:${options.metricsPort}/metrics, data ${dbFile})…`);
  const proc = startLogged('temporal', binary, args, logFile);
  try {
    await waitUntilReady(
      'Temporal',
      () => isPortOpen(options.port),
      { timeoutMs: 60_000, onTimeout: () => `Last 20 lines of its log (${logFile}):\n${tailFile(logFile)}` },
      proc.child,
    );
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}
