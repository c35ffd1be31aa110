import { Client } from '@elastic/elasticsearch';

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
