import { Router } from 'express';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import type { Connection } from '@temporalio/client';
import { isElasticsearchHealthy } from '../lib/elasticsearch/client';

export interface HealthDeps {
  es: ElasticsearchClient;
  temporal: Connection;
  namespace: string;
}

async function temporalReachable(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  }
}

/** `/healthz` answers 200 only when Temporal and Elasticsearch are both reachable; `/livez` only says the process is up. */
export function healthRoutes({ es, temporal, namespace }: HealthDeps): Router {
  const router = Router();
  const check = async (_req: unknown, res: import('express').Response) => {
    const [elasticsearch, temporalOk] = await Promise.all([isElasticsearchHealthy(es), temporalReachable(temporal, namespace)]);
    const ok = elasticsearch && temporalOk;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      checks: { elasticsearch: elasticsearch ? 'ok' : 'unreachable', temporal: temporalOk ? 'ok' : 'unreachable' },
    });
  };
  router.get('/healthz', check);
  router.get('/readyz', check);
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return router;
}
