import { Router } from 'express';
import { z } from 'zod';
import { searchMemories, type SearchDeps, type SearchResult } from '../lib/search/execute';
import { SearchFilters, SearchMode, planFor } from '../lib/search/plan';
import { principalOf, requirePermission } from './auth';
import { parseWith } from './errors';

export const NativeSearchRequest = z
  .object({
    query: z.string().trim().min(1).max(10_000),
    mode: SearchMode.default('hybrid'),
    top_k: z.number().int().min(1).max(200).default(10),
    filters: SearchFilters.default({}),
  })
  .strict();

/** A search hit as the native API answers it: the memory with its provenance, never its vector. */
export function toNativeResult(result: SearchResult) {
  return {
    id: result.id,
    text: result.text,
    score: result.score,
    type: result.type,
    confidence: result.confidence,
    entities: result.entities,
    event_dates: result.event_dates,
    categories: result.categories,
    metadata: result.metadata,
    scope: result.scope,
    provenance: result.provenance,
    created_at: result.created_at,
    updated_at: result.updated_at ?? null,
    ranks: result.ranks,
  };
}

/** `POST /v1/search`: hybrid (BM25 + kNN, fused by RRF), bm25 or knn over the caller's memories. */
export function searchRoutes(deps: SearchDeps): Router {
  const router = Router();
  router.post('/v1/search', requirePermission('search'), async (req, res) => {
    const body = parseWith(NativeSearchRequest, req.body);
    const { tenant } = principalOf(req);
    const started = performance.now();
    const outcome = await searchMemories(deps, { tenant, query: body.query, plan: planFor(body.mode, body.top_k), filters: body.filters });
    res.json({
      results: outcome.results.map(toNativeResult),
      mode: body.mode,
      // What ran, and why it differs from the mode (kNN is skipped while the index awaits a reindex).
      methods: outcome.methods,
      ...(outcome.warnings.length ? { warnings: outcome.warnings } : {}),
      took_ms: Math.round(performance.now() - started),
    });
  });
  return router;
}
