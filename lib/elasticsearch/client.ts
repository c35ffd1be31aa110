import { Client, type estypes } from '@elastic/elasticsearch';
import { badInput, upstreamFailure, type CairnError } from '../errors';

export function createElasticsearchClient(url: string): Client {
  return new Client({
    node: url,
    requestTimeout: 30_000,
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

export type { Client as ElasticsearchClient };

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
