import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import { CAIRN_SEARCH_ATTRIBUTES } from './search-attributes';

export interface TemporalHandle {
  connection: Connection;
  client: Client;
}

export async function connectTemporal(config: Pick<Config, 'temporalAddress' | 'TEMPORAL_NAMESPACE'>): Promise<TemporalHandle> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return { connection, client };
}

/** True when the frontend answers and the namespace exists. */
export async function isTemporalReady(handle: TemporalHandle, namespace: string): Promise<boolean> {
  try {
    await handle.connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a worker polls `taskQueue` for workflow tasks: any worker, or the one whose identity starts
 * with `identityPrefix` (a worker's default identity is `<pid>@<host>`; a worker stopped a moment ago
 * is still listed for a while). A server that does not answer counts as not polled.
 */
export async function isPolled(handle: TemporalHandle, namespace: string, taskQueue: string, identityPrefix = ''): Promise<boolean> {
  const queue = await handle.client.workflowService
    .describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType: 1 })
    .catch(() => undefined);
  return queue?.pollers?.some((poller) => (poller.identity ?? '').startsWith(identityPrefix)) ?? false;
}

/**
 * Registers Cairn's search attributes on servers we did not start ourselves (the local dev server
 * gets them as start-up flags). Idempotent: only missing keys are added.
 */
export async function ensureSearchAttributes(handle: TemporalHandle, namespace: string): Promise<void> {
  const existing = await handle.connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = CAIRN_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return;
  await handle.connection.operatorService
    .addSearchAttributes({
      namespace,
      // 2 = INDEXED_VALUE_TYPE_KEYWORD
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, 2])),
    })
    .catch((error: Error) => {
      // Another process (a second worker, a parallel test run) registered them first: that is success.
      if (!/already exists/i.test(error.message)) throw error;
    });
}
