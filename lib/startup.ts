import { Connection } from '@temporalio/client';
import type { Config } from './config';
import { createElasticsearchClient } from './elasticsearch/client';
import type { Logger } from './logger';

const FIRST_WAIT_MS = 1_000;
const LONGEST_WAIT_MS = 15_000;

/**
 * Waits for Elasticsearch and Temporal to answer before a process starts: an API or worker started
 * (or restarted) during an outage waits for the services, saying so every attempt, and starts once
 * they are back (an API then resumes its accepted jobs), rather than exiting. A process manager, or
 * `npm run dev`, would otherwise see it die and stop or restart everything.
 */
export async function waitForServices(config: Pick<Config, 'elasticsearchUrl' | 'temporalAddress'>, log: Logger): Promise<void> {
  const es = createElasticsearchClient(config.elasticsearchUrl);
  try {
    await untilAnswers(`Elasticsearch at ${config.elasticsearchUrl}`, () => es.cluster.health().then(() => undefined), log);
  } finally {
    await es.close();
  }
  await untilAnswers(`Temporal at ${config.temporalAddress}`, async () => {
    const connection = await Connection.connect({ address: config.temporalAddress, connectTimeout: 5_000 });
    await connection.close();
  }, log);
}

async function untilAnswers(what: string, attempt: () => Promise<void>, log: Logger): Promise<void> {
  for (let wait = FIRST_WAIT_MS; ; wait = Math.min(wait * 2, LONGEST_WAIT_MS)) {
    try {
      return await attempt();
    } catch (error) {
      // The reason, not the error object: Elasticsearch's errors carry the whole client connection (headers, pool).
      log.warn({ reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, `${what} does not answer (${error instanceof Error ? error.message : String(error)}); trying again in ${wait / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
