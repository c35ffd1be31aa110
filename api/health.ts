import { z } from 'zod';
import { Router, type Response } from 'express';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import type { Connection } from '@temporalio/client';
import { isElasticsearchHealthy } from '../lib/elasticsearch/client';
import { describeMismatch, type EmbeddingMatch } from '../lib/elasticsearch/embedding-match';

export interface HealthDeps {
  es: ElasticsearchClient;
  temporal: Connection;
  namespace: string;
  /** True once the process has begun to shut down: readiness then fails so traffic moves elsewhere. */
  shuttingDown?: () => boolean;
  /** Reported, never failing a check: a pending reindex degrades search, it does not stop the API. */
  embeddingMatch?: EmbeddingMatch;
}

async function temporalReachable(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  }
}

async function embeddingState(match: EmbeddingMatch | undefined): Promise<string | undefined> {
  if (!match) return undefined;
  try {
    const [mismatch] = await match.mismatches();
    return mismatch ? `reindex needed: ${describeMismatch(mismatch)}` : 'ok';
  } catch {
    return 'unknown';
  }
}

/** What `/healthz` and `/readyz` answer (200, or 503 with the same shape). */
export const HealthAnswer = z.object({
  status: z.enum(['ok', 'unavailable', 'shutting_down']),
  checks: z
    .object({
      elasticsearch: z.enum(['ok', 'unreachable']),
      temporal: z.enum(['ok', 'unreachable']),
      /** Whether the memories index's vectors were made by the configured embedding model. */
      embedding: z.string().optional(),
    })
    .optional(),
});
export const Liveness = z.object({ status: z.literal('ok') });

/**
 * `/healthz` answers 200 only when Temporal and Elasticsearch are both reachable; `/readyz` also
 * answers 503 as soon as the API begins shutting down; `/livez` only says the process is up.
 */
export function healthRoutes({ es, temporal, namespace, shuttingDown, embeddingMatch }: HealthDeps): Router {
  const router = Router();
  const check = async (res: Response) => {
    const [elasticsearch, temporalOk, embedding] = await Promise.all([isElasticsearchHealthy(es), temporalReachable(temporal, namespace), embeddingState(embeddingMatch)]);
    const ok = elasticsearch && temporalOk;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      checks: { elasticsearch: elasticsearch ? 'ok' : 'unreachable', temporal: temporalOk ? 'ok' : 'unreachable', ...(embedding ? { embedding } : {}) },
    });
  };
  router.get('/healthz', (_req, res) => check(res));
  router.get('/readyz', async (_req, res) => {
    if (shuttingDown?.()) {
      res.status(503).json({ status: 'shutting_down' });
      return;
    }
    await check(res);
  });
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return router;
}
