import { ApplicationFailure } from '@temporalio/common';

/**
 * The one place where a kind of failure is mapped to an HTTP status and a Temporal retry decision.
 * Routes throw these; activities convert them with `toActivityFailure`.
 */
export type ErrorCode =
  | 'bad_input'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'upstream_failure';

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upstream_failure: 503,
};

export const httpStatusOf = (code: string): number => HTTP_STATUS[code as ErrorCode] ?? 400;

/** Retrying cannot fix these: the job ends failed with the message instead. */
const NON_RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  'bad_input',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
]);

export class CairnError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'CairnError';
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  get retryable(): boolean {
    return !NON_RETRYABLE.has(this.code);
  }
}

export const badInput = (message: string, details?: unknown) => new CairnError('bad_input', message, details);
export const notFound = (what: string) => new CairnError('not_found', `${what} not found`);
export const conflict = (message: string) => new CairnError('conflict', message);
export const unauthorized = (message = 'Missing or invalid API key') => new CairnError('unauthorized', message);
export const forbidden = (permission: string) =>
  new CairnError('forbidden', `This API key lacks the "${permission}" permission`);
export const payloadTooLarge = (message: string) => new CairnError('payload_too_large', message);
export const unsupportedMediaType = (message: string) => new CairnError('unsupported_media_type', message);
export const upstreamFailure = (message: string) => new CairnError('upstream_failure', message);

// gRPC status codes that mean "the service is not there (now)", not "your request is wrong".
const GRPC_UNAVAILABLE = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */]);
// The Elasticsearch client's errors for a node it cannot reach or that did not answer in time.
const ES_UNREACHABLE = new Set(['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError']);
/**
 * The server's own disk or file handles running out or refusing writes (the blob store's or the
 * acceptance journal's folder full, over quota, read-only): nothing the caller sent is wrong, and the
 * same request succeeds once an operator frees the disk.
 */
const STORAGE_EXHAUSTED: Record<string, string> = {
  ENOSPC: 'no space left on its disk',
  EDQUOT: 'its disk quota is used up',
  EROFS: 'its folder is on a read-only file system',
  EACCES: 'its folder is not writable',
  EPERM: 'its folder is not writable',
  EMFILE: 'the process has too many open files',
  ENFILE: 'the system has too many open files',
};

/**
 * The disk failing (an I/O error), not running out: to a caller the same as a full disk — nothing it
 * sent is wrong, and the request succeeds once an operator has dealt with the disk — and so to an
 * accepted job, which waits for it. A fault an operator must see: logged as an error (isDiskFault).
 */
const STORAGE_FAULTS: Record<string, string> = {
  EIO: 'its disk reports an I/O error',
};

/**
 * Temporal refusing a request for its size (a payload over its blob limit, a message over gRPC's):
 * the request is too large, not the service down. Undefined for anything else.
 */
export function asTooLargeForTemporal(error: unknown): CairnError | undefined {
  if (error instanceof CairnError) return undefined;
  const message = String((error as { message?: unknown })?.message ?? '') + ' ' + String((error as { cause?: { message?: unknown } })?.cause?.message ?? '');
  if (/Blob data size exceeds limit|larger than max|message length too large/i.test(message)) {
    return payloadTooLarge(`the request is too large for Temporal to carry (its size limits): ${message.trim().slice(0, 300)}`);
  }
  return undefined;
}

/** The failure type of an activity that Cairn's own storage stopped (STORAGE_EXHAUSTED): the job waits for it. */
export const STORAGE_UNAVAILABLE = 'storage_unavailable';

const codeOf = (error: unknown) => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
};

/** What to say of a system error of the disk (its code, not its message, which names the server's paths). */
function storageFailureMessage(error: unknown): string | undefined {
  const code = codeOf(error);
  if (code && Object.hasOwn(STORAGE_EXHAUSTED, code)) return `Cairn's storage cannot take writes now: ${STORAGE_EXHAUSTED[code]} (${code})`;
  if (code && Object.hasOwn(STORAGE_FAULTS, code)) return `Cairn's storage failed: ${STORAGE_FAULTS[code]} (${code})`;
  return undefined;
}

/** A disk fault (STORAGE_FAULTS), as the disk raised it or as an activity's failure carries it. */
export function isDiskFault(error: unknown): boolean {
  const code = error instanceof ApplicationFailure && error.type === STORAGE_UNAVAILABLE ? error.details?.[0] : codeOf(error);
  return typeof code === 'string' && Object.hasOwn(STORAGE_FAULTS, code);
}

/** Elasticsearch's reason for refusing a write by a block (a read-only cluster or index), else undefined. */
export function writeBlockOf(error: unknown): string | undefined {
  const body = (error as { meta?: { body?: { error?: { type?: string; reason?: unknown } } } })?.meta?.body;
  if (body?.error?.type !== 'cluster_block_exception') return undefined;
  return typeof body.error.reason === 'string' ? body.error.reason.slice(0, 300) : 'a block';
}

/**
 * What an outage of Temporal, Elasticsearch or Cairn's own disk looks like from a request: the
 * service could not be reached, timed out, or answered that it is overloaded or unavailable; the disk
 * is full or refuses writes. Such a request is answered 503 (retry later), never 500. Undefined for
 * anything else.
 */
export function asServiceUnavailable(error: unknown): CairnError | undefined {
  if (error instanceof CairnError) return undefined;
  const named = error as { name?: string; code?: unknown; cause?: { code?: unknown }; meta?: { statusCode?: number }; message?: string };
  const storage = storageFailureMessage(error);
  if (storage) return upstreamFailure(storage);
  if (named?.name && ES_UNREACHABLE.has(named.name)) return upstreamFailure(`Elasticsearch is unavailable: ${named.message}`);
  const body = (error as { meta?: { body?: { error?: { type?: string; index?: string; reason?: string } } } })?.meta?.body;
  // A read-only cluster (cluster.blocks.read_only, 403) or index (the flood stage's block, 429): an
  // operator lifts it once there is room, and the same write succeeds.
  const block = writeBlockOf(error);
  if (block) return upstreamFailure(`Elasticsearch refuses writes now (${block})`);
  // Its reason says which: a node's disk past its flood stage (a write block), a full write queue.
  if (named?.name === 'ResponseError' && [429, 502, 503, 504].includes(named.meta?.statusCode ?? 0)) {
    const reason = typeof body?.error?.reason === 'string' ? `: ${body.error.reason.slice(0, 300)}` : '';
    return upstreamFailure(`Elasticsearch is unavailable (${named.meta!.statusCode}${reason})`);
  }
  // An index deleted from under a running Cairn (by an operator, a restore): no request can be
  // answered from it until a process starts and creates it again.
  if (named?.name === 'ResponseError' && body?.error?.type === 'index_not_found_exception') {
    return upstreamFailure(`Elasticsearch has no index ${body.error.index ?? '(unnamed)'} (deleted while Cairn runs?): restart the API and worker to create it`);
  }
  // The namespace the process is configured for (TEMPORAL_NAMESPACE) is not on the server: every job
  // read and start fails alike until it is created or the setting fixed.
  if (named?.name === 'NamespaceNotFoundError') return upstreamFailure(`Temporal is unavailable: ${named.message} (TEMPORAL_NAMESPACE)`);
  // Temporal's ServiceError carries the gRPC status on itself or on its cause.
  const code = typeof named?.code === 'number' ? named.code : typeof named?.cause?.code === 'number' ? named.cause.code : undefined;
  if (code !== undefined && GRPC_UNAVAILABLE.has(code) && /ServiceError|Error/.test(named?.name ?? '')) {
    return upstreamFailure(`Temporal is unavailable: ${named.message}`);
  }
  return undefined;
}

/** Activities throw this so Temporal stops retrying bad input and the job fails with the reason. */
export function toActivityFailure(error: unknown): unknown {
  if (error instanceof CairnError) {
    // Its code as the failure's type (a retryable one was typed by its class name, "CairnError").
    return error.retryable ? ApplicationFailure.retryable(error.message, error.code) : ApplicationFailure.nonRetryable(error.message, error.code);
  }
  const storage = storageFailureMessage(error);
  if (storage) return ApplicationFailure.retryable(storage, STORAGE_UNAVAILABLE, codeOf(error));
  return error;
}

/** Wraps an activity body so CairnErrors become the right Temporal failure. */
export function activityBoundary<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (error) {
      throw toActivityFailure(error);
    }
  };
}
