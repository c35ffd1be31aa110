import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCapture, runVisible, startLogged, tailFile, waitUntilReady, type ManagedProcess } from './process';

/**
 * A single local Elasticsearch node from the integ-test distribution on Maven Central.
 * That distribution carries no JDK, so it runs on the machine's Java 17; the JS client is pinned to
 * the same major (8).
 */
export const ELASTICSEARCH_VERSION = '8.19.2';
const ARTIFACT = `org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ELASTICSEARCH_VERSION}:zip`;
/** Elasticsearch refuses to run as root; when we are root it runs as this system user. */
const SERVICE_USER = 'cairn-es';

/**
 * The local node runs the JVM's quick compiler only (C1) by default: a development node on a laptop
 * serves small indices, where the optimising compiler's (C2) work to make Lucene's hot code faster
 * costs more CPU than it saves, and keeps costing it. C2 compiled the indexing, refresh and merge
 * paths again and again while Cairn ingested (still 1.1–2 CPU-s in every 42-document run of
 * bench:ingest on a node 35 minutes old, 2–7 CPU-s on a fresh one), on the cores the embedding model
 * needs. With C1 alone, the node's CPU for the same run fell to 1.6–1.8 CPU-s (its own work 1.5,
 * compiling 0.2), and LoCoMo searches were as fast (hybrid p50 32 ms against 35–40). `full` (the
 * JVM's default) is for a node that holds a large index for a long time.
 */
const JIT_OPTIONS: Record<LocalElasticsearchOptions['jit'], string[]> = {
  quick: ['-XX:TieredStopAtLevel=1'],
  full: [],
};

export interface LocalElasticsearchOptions {
  url: string;
  port: number;
  cacheDir: string;
  dataDir: string;
  heap: string;
  jit: 'quick' | 'full';
  log?: (line: string) => void;
}

export async function isElasticsearchUp(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/_cluster/health`, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) return false;
    const health = (await response.json()) as { status?: string };
    return health.status === 'green' || health.status === 'yellow';
  } catch {
    return false;
  }
}

export async function installElasticsearch(cacheDir: string, log = console.log): Promise<string> {
  const home = path.join(cacheDir, `elasticsearch-${ELASTICSEARCH_VERSION}`);
  if (fs.existsSync(path.join(home, 'bin', 'elasticsearch'))) return home;

  const mavenRepo = path.join(cacheDir, 'm2');
  log(`Downloading Elasticsearch ${ELASTICSEARCH_VERSION} (integ-test distribution) from Maven Central with mvn…`);
  await runVisible('mvn', [
    '-B',
    '--no-transfer-progress',
    `-Dmaven.repo.local=${mavenRepo}`,
    'dependency:get',
    `-Dartifact=${ARTIFACT}`,
    '-Dtransitive=false',
  ]);
  const zip = path.join(
    mavenRepo,
    'org/elasticsearch/distribution/integ-test-zip/elasticsearch',
    ELASTICSEARCH_VERSION,
    `elasticsearch-${ELASTICSEARCH_VERSION}.zip`,
  );
  const staging = `${home}.partial`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  log(`Unpacking ${path.basename(zip)} into ${cacheDir}…`);
  await runVisible('unzip', ['-q', zip, '-d', staging]).catch(() =>
    runVisible('jar', ['xf', zip], { cwd: staging }),
  );
  // The zip holds one top-level folder; move it into place only once complete, so an interrupted
  // first run never leaves a half-unpacked install that later runs would trust.
  const [top] = fs.readdirSync(staging);
  fs.renameSync(path.join(staging, top!), home);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.chmodSync(path.join(home, 'bin', 'elasticsearch'), 0o755);
  return home;
}

function javaHome(): string {
  if (process.env.ES_JAVA_HOME) return process.env.ES_JAVA_HOME;
  if (process.env.JAVA_HOME) return process.env.JAVA_HOME;
  const java = execFileSync('sh', ['-c', 'readlink -f "$(command -v java)"'], { encoding: 'utf8' }).trim();
  if (!java) throw new Error('Elasticsearch needs Java 17 or newer: no `java` on PATH and no JAVA_HOME set.');
  return path.dirname(path.dirname(java));
}

async function ensureServiceUser(): Promise<void> {
  try {
    await runCapture('id', ['-u', SERVICE_USER]);
  } catch {
    await runCapture('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER]);
  }
}

/** Folders the service user must write; when they are not reachable for it we say so plainly. */
async function prepareForServiceUser(dirs: string[], readOnly: string[]): Promise<void> {
  await ensureServiceUser();
  for (const dir of dirs) {
    fs.mkdirSync(dir, { recursive: true });
    await runCapture('chown', ['-R', `${SERVICE_USER}:`, dir]);
  }
  for (const dir of [...dirs, ...readOnly]) {
    try {
      await runCapture('runuser', ['-u', SERVICE_USER, '--', 'test', '-r', dir, '-a', '-x', dir]);
    } catch {
      throw new Error(
        `Elasticsearch runs as the user "${SERVICE_USER}" (it refuses root) but cannot reach ${dir}. ` +
          'Set CAIRN_DATA_DIR / CAIRN_CACHE_DIR to folders whose parents are world-traversable.',
      );
    }
  }
}

/** True when the service user can walk down to (and read) `dir`. */
async function serviceUserCanReach(dir: string): Promise<boolean> {
  return runCapture('runuser', ['-u', SERVICE_USER, '--', 'test', '-r', dir, '-a', '-x', dir])
    .then(() => true)
    .catch(() => false);
}

/**
 * Where this node keeps data, logs and config: under the data folder, unless we are root and the
 * data folder sits below a directory the service user cannot traverse (a clone inside /root, say);
 * then in a per-data-folder directory under /var/lib/cairn.
 */
async function elasticsearchRoot(dataDir: string, asRoot: boolean, log: (line: string) => void): Promise<string> {
  const preferred = path.join(dataDir, 'elasticsearch');
  if (!asRoot) return preferred;
  await ensureServiceUser();
  fs.mkdirSync(dataDir, { recursive: true });
  if (await serviceUserCanReach(dataDir)) return preferred;
  const fallback = path.join('/var/lib/cairn', `elasticsearch-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12)}`);
  log(`The user ${SERVICE_USER} cannot reach ${dataDir}; keeping Elasticsearch data in ${fallback} instead.`);
  return fallback;
}

export async function startElasticsearch(options: LocalElasticsearchOptions): Promise<ManagedProcess> {
  const log = options.log ?? console.log;
  const home = await installElasticsearch(options.cacheDir, log);
  const asRoot = process.getuid?.() === 0;
  const esRoot = await elasticsearchRoot(options.dataDir, asRoot, log);
  const dataDir = path.join(esRoot, 'data');
  const logsDir = path.join(esRoot, 'logs');
  const configDir = path.join(esRoot, 'config');
  const tmpDir = path.join(esRoot, 'tmp');
  for (const dir of [dataDir, logsDir, tmpDir]) fs.mkdirSync(dir, { recursive: true });
  // ES writes a keystore and temp files next to its config; a private copy keeps the cached install
  // read-only and shareable between clones.
  if (!fs.existsSync(path.join(configDir, 'elasticsearch.yml'))) {
    fs.cpSync(path.join(home, 'config'), configDir, { recursive: true });
  }
  // The shipped jvm.options write GC logs, error files and heap dumps to paths relative to the
  // working directory; point them into our logs folder so they are writable by the service user.
  const jvmOptions = path.join(configDir, 'jvm.options');
  fs.writeFileSync(
    jvmOptions,
    fs
      .readFileSync(jvmOptions, 'utf8')
      .replaceAll('file=logs/', `file=${logsDir}/`)
      .replaceAll('-XX:ErrorFile=logs/', `-XX:ErrorFile=${logsDir}/`)
      .replaceAll('-XX:HeapDumpPath=data', `-XX:HeapDumpPath=${logsDir}`),
  );
  if (asRoot) await prepareForServiceUser([esRoot], [home]);

  const settings = [
    'discovery.type=single-node',
    'xpack.security.enabled=false',
    'network.host=127.0.0.1',
    `http.port=${options.port}`,
    `path.data=${dataDir}`,
    `path.logs=${logsDir}`,
    'cluster.name=cairn-local',
    'node.name=cairn-local',
    // A laptop disk that is 90% full must not flip the indices to read-only.
    'cluster.routing.allocation.disk.threshold_enabled=false',
    'action.destructive_requires_name=false',
  ].flatMap((setting) => ['-E', setting]);
  const env = {
    ...process.env,
    ES_JAVA_HOME: javaHome(),
    ES_PATH_CONF: configDir,
    ES_TMPDIR: tmpDir,
    // The user's ES_JAVA_OPTS come last: the JVM takes the last of repeated options.
    ES_JAVA_OPTS: [`-Xms${options.heap}`, `-Xmx${options.heap}`, ...JIT_OPTIONS[options.jit], process.env.ES_JAVA_OPTS ?? ''].join(' ').trim(),
  };
  const consoleLog = path.join(options.dataDir, 'elasticsearch.log');
  const binary = path.join(home, 'bin', 'elasticsearch');
  const cwd = esRoot;
  const proc = asRoot
    ? startLogged('elasticsearch', 'runuser', ['-u', SERVICE_USER, '-m', '--', binary, ...settings], consoleLog, { env, cwd })
    : startLogged('elasticsearch', binary, settings, consoleLog, { env, cwd });
  if (asRoot) fs.chmodSync(consoleLog, 0o644);

  log(`Starting Elasticsearch ${ELASTICSEARCH_VERSION} on ${options.url} (heap ${options.heap}, ${options.jit} JIT, data in ${dataDir})…`);
  try {
    await waitUntilReady(
      'Elasticsearch',
      () => isElasticsearchUp(options.url),
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
        onTimeout: () => `Last 20 lines of its log (${consoleLog}):\n${tailFile(consoleLog)}`,
      },
      proc.child,
    );
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}
