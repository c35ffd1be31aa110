import { Client, type estypes } from '@elastic/elasticsearch';
import { badInput, upstreamFailure, type CairnError } from '../errors';

/**
 * How long one request may take before it is given up (a TimeoutError: 503 to an API caller, a retry
 * to an activity). The worker's bulk writes of large batches and the start-up's index creation get
 * 30 s. The API answers a caller, who does better with a 503 and Retry-After after 10 s than a request
 * held for 30 by a node that takes connections and answers nothing (a long GC pause, a frozen host);
 * everything the API asks of Elasticsearch (a search, a page of a listing, one memory's edit) is small.
 */
export const REQUEST_TIMEOUT_MS = { worker: 30_000, api: 10_000 } as const;

export function createElasticsearchClient(url: string): Client {
  return new Client({
    node: url,
    requestTimeout: REQUEST_TIMEOUT_MS.worker,
    // Retries here cover a dropped connection; activity retries cover longer outages.
    maxRetries: 2,
  });
}

export async function isElasticsearchHealthy(client: Client): Promise<boolean> {
  try {
    const health = await client.cluster.health({ timeout: '2s' }, { requestTimeout: 3000, maxRetries: 0 });
    return health.status === 'green' || health.status === 'yellow';
  } catch {
    return false;
  }
}

/** The API's view of `es`: the same connections, each request given REQUEST_TIMEOUT_MS.api. */
export function forApiRequests(es: Client): Client {
  return es.child({ requestTimeout: REQUEST_TIMEOUT_MS.api });
}

export type { Client as ElasticsearchClient };

/** Elasticsearch refused a conditional write (`if_seq_no`, `op_type: create`): another write landed first. */
export function isVersionConflict(error: unknown): boolean {
  const refused = error as { statusCode?: number; meta?: { statusCode?: number } } | undefined;
  return (refused?.meta?.statusCode ?? refused?.statusCode) === 409;
}

/**
 * A compare-and-set without scripts (this cluster has none): `attempt` reads a document, derives the
 * new one and writes it on the condition that nothing changed it since. When something did (409), it
 * runs again on what is there now, at most `attempts` times in all; then the conflict is thrown.
 */
export async function retryOnVersionConflict<T>(attempts: number, attempt: () => Promise<T>): Promise<T> {
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isVersionConflict(error) || tried >= attempts) throw error;
    }
  }
}

/** A document read by id, with what a compare-and-set on it needs. */
export interface StoredDocument<T> {
  source: T;
  seqNo?: number;
  primaryTerm?: number;
}

/**
 * A document by id, read in real time (a write not yet refreshed is seen), or undefined when there is
 * none — or, given `tenant`, when it belongs to another tenant (its `tenant` field), so a caller
 * answers both alike (404). Any other failure (Elasticsearch unreachable) is thrown, never read as
 * "not there".
 */
export async function getDocument<T>(es: Client, request: estypes.GetRequest, tenant?: string): Promise<StoredDocument<T> | undefined> {
  const response = await es.get<T>(request, { ignore: [404] });
  if (!response.found) return undefined;
  const source = (response._source ?? {}) as T;
  if (tenant !== undefined && (source as { tenant?: unknown }).tenant !== tenant) return undefined;
  return { source, seqNo: response._seq_no, primaryTerm: response._primary_term };
}

/**
 * Why a bulk write failed, as the failure to raise: an item the index refuses for its content (a 400:
 * a value the mapping cannot take) is bad input, which no retry fixes, so the job fails saying so;
 * anything else (429 rejections, a shard unavailable) is transient and retried.
 */
export function bulkFailure(response: estypes.BulkResponse, what: string): CairnError {
  const failed = response.items.map((item) => Object.values(item)[0]!).find((result) => result.error);
  const reason = `Elasticsearch rejected ${what}: ${failed?.error?.type}: ${failed?.error?.reason}`;
  return failed?.status === 400 ? badInput(reason) : upstreamFailure(reason);
}
