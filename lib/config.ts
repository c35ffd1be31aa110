import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * Every setting Cairn reads from the environment, validated once at start-up.
 * A bad value stops the process with a message that names the variable.
 */

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const optionalUrl = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional())
  .optional();
/** host:port, as Temporal's clients take it: no scheme (a URL here retried forever as an "outage"). */
const optionalHostPort = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .pipe(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'must be host:port (no scheme), e.g. temporal.internal:7233').optional())
  .optional();
const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

function defaultCacheDir(): string {
  // Elasticsearch must run as a non-root user, which cannot traverse /root: when we are root the
  // shared cache lives in a world-readable system folder instead of the home directory.
  if (process.getuid?.() === 0) return '/var/cache/cairn';
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'cairn');
}

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().default('0.0.0.0'),
  PORT: port.default(8080),

  CAIRN_DATA_DIR: z.string().default(path.resolve(process.cwd(), '.data')),
  CAIRN_CACHE_DIR: z.string().default(defaultCacheDir()),
  CAIRN_BLOB_DIR: optionalString,

  TEMPORAL_ADDRESS: optionalHostPort,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('cairn-ingest'),
  TEMPORAL_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  /** The local dev server's Prometheus endpoint (server-side metrics: persistence, task queues). */
  TEMPORAL_METRICS_PORT: port.default(8235),

  ELASTICSEARCH_URL: optionalUrl,
  ELASTICSEARCH_PORT: port.default(9200),
  ELASTICSEARCH_HEAP: z
    .string()
    .regex(/^\d+[mg]$/, 'must look like 512m or 1g')
    .default('512m'),
  /** The local node's JIT: `quick` (C1 only) or `full` (C1, then C2); see lib/local-services/elasticsearch.ts. */
  ELASTICSEARCH_JIT: z.enum(['quick', 'full']).default('quick'),
  ELASTICSEARCH_INDEX_PREFIX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - or _')
    .default('cairn'),

  CAIRN_API_KEY: optionalString,
  CAIRN_API_KEYS: optionalString,

  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_EMBEDDING_MODEL: z.string().default('text-embedding-3-small'),
  OPENAI_EXTRACTION_MODEL: z.string().default('gpt-4o-mini'),
  /** Dimensions requested from OpenAI (text-embedding-3-* can shorten); unset = the model's native size. */
  OPENAI_EMBEDDING_DIMS: positiveInt.optional(),
  /** `auto`: OpenAI when OPENAI_API_KEY is set, else the local in-process model. */
  EMBEDDING_PROVIDER: z.enum(['auto', 'local', 'openai']).default('auto'),
  EXTRACTION_PROVIDER: z.enum(['auto', 'local', 'openai']).default('auto'),
  /** Inference threads for the local embedding model, one core and one model copy each (default: cores, at most 4). */
  EMBEDDING_THREADS: positiveInt.optional(),
  /**
   * `npm run dev` only: the CPU priority (nice, 0–19) of the worker it starts beside the API, Temporal
   * and Elasticsearch on one machine, so ingestion takes the CPU they leave (lib/local-services/process.ts).
   */
  CAIRN_WORKER_NICE: z.coerce.number().int().min(0).max(19).default(19),

  CHUNK_TOKENS: positiveInt.default(256),
  CHUNK_OVERLAP_TOKENS: z.coerce.number().int().min(0).default(32),
  CONVERSATION_TURNS_PER_CHUNK: positiveInt.default(1),
  /**
   * How long acceptance waits for Temporal to acknowledge a fresh job's start (ms). Past it, the start
   * is recorded durably in the blob store, the caller is answered, and the start completes in the
   * background (a stopped process's records are started by the next sweep). 0 always waits.
   */
  ACCEPT_START_WAIT_MS: z.coerce.number().int().min(0).default(20),
  /**
   * The longest acceptance waits for that acknowledgement when it must (Temporal not answering lately,
   * a caller-derived id) before answering 503 (ms): a stalled Temporal is not a request that hangs.
   */
  ACCEPT_START_DEADLINE_MS: z.coerce.number().int().min(100).default(20_000),
  /**
   * On SIGTERM the API keeps listening this long with /readyz answering 503, so a load balancer stops
   * sending it requests, before it closes its port and finishes what is in flight (ms).
   */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(2_000),
  /**
   * The API's acceptance journal (lib/accept-journal.ts): a fresh job is answered once its entry is
   * flushed there, its upload and start completed in the background. The folder is one API process's
   * own, on a disk that outlives it: give each replica its own.
   */
  ACCEPT_JOURNAL: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  ACCEPT_JOURNAL_DIR: optionalString,
  /**
   * The request bodies (uploads, JSON) an API process reads and holds at once, by their declared size
   * (MB): one that would go past it is a 503 with Retry-After (api/body-memory.ts).
   */
  REQUEST_BODY_MEMORY_MB: positiveInt.default(256),
  /** Chunks per extract/embed/index activity, and how many such batches run at once. */
  BATCH_SIZE: positiveInt.default(32),
  BATCH_CONCURRENCY: positiveInt.default(4),
  /** Where the worker serves Prometheus metrics (Temporal SDK + Cairn stages); empty turns it off. */
  CAIRN_WORKER_METRICS_ADDRESS: z.string().trim().default('127.0.0.1:9464'),
  /** URL sources: loopback/private targets are refused unless this is set (tests serving fixtures on 127.0.0.1). */
  CAIRN_ALLOW_PRIVATE_URLS: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  URL_FETCH_TIMEOUT_MS: positiveInt.default(30_000),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config extends Env {
  /** Where the API and worker reach Temporal; a local dev server when TEMPORAL_ADDRESS is unset. */
  temporalAddress: string;
  /** True when Cairn should start (or reuse) its own local Temporal dev server. */
  localTemporal: boolean;
  elasticsearchUrl: string;
  localElasticsearch: boolean;
  blobDir: string;
  /** The API's acceptance journal folder (ACCEPT_JOURNAL_DIR, or one under CAIRN_DATA_DIR). */
  journalDir: string;
  /** Static keys from CAIRN_API_KEY / CAIRN_API_KEYS: key → tenant. */
  staticApiKeys: Map<string, string>;
  /** CAIRN_API_KEY, the operator key: administers keys of every tenant. CAIRN_API_KEYS' keys are each their tenant's own. */
  operatorApiKey?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_TENANT = 'default';

/**
 * A tenant name: letters, digits, . _ - (at most 64), and not only dots — a tenant names folders (its
 * import root, its blobs), where "." and ".." would be another tenant's parent.
 */
export const TENANT_NAME = /^(?!\.+$)[A-Za-z0-9_.-]{1,64}$/;

function parseApiKeys(env: Env): Map<string, string> {
  const keys = new Map<string, string>();
  if (env.CAIRN_API_KEY) keys.set(env.CAIRN_API_KEY, DEFAULT_TENANT);
  for (const pair of (env.CAIRN_API_KEYS ?? '').split(',')) {
    if (!pair.trim()) continue;
    const [key, tenant] = pair.split('=').map((part) => part?.trim());
    if (!key || !tenant || !TENANT_NAME.test(tenant)) {
      throw new ConfigError(
        `CAIRN_API_KEYS: expected "key=tenant,key2=tenant2" with tenants of letters, digits, . _ - (not only dots); got "${pair}"`,
      );
    }
    keys.set(key, tenant);
  }
  return keys;
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const env = parsed.data;
  return {
    ...env,
    temporalAddress: env.TEMPORAL_ADDRESS ?? `127.0.0.1:${env.TEMPORAL_PORT}`,
    localTemporal: !env.TEMPORAL_ADDRESS,
    elasticsearchUrl: env.ELASTICSEARCH_URL ?? `http://127.0.0.1:${env.ELASTICSEARCH_PORT}`,
    localElasticsearch: !env.ELASTICSEARCH_URL,
    blobDir: env.CAIRN_BLOB_DIR ?? path.join(env.CAIRN_DATA_DIR, 'blobs'),
    journalDir: env.ACCEPT_JOURNAL_DIR ?? path.join(env.CAIRN_DATA_DIR, 'accept-journal'),
    staticApiKeys: parseApiKeys(env),
    operatorApiKey: env.CAIRN_API_KEY || undefined,
  };
}

/** For entry points: load the config or exit with the reason, never a stack trace. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}
