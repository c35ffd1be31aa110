import type { Router } from 'express';
import { z } from 'zod';
import { countTokens } from '../../lib/chunking/tokens';
import { searchMemories, type SearchDeps, type SearchResult } from '../../lib/search/execute';
import { planFor } from '../../lib/search/plan';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { checkActsFor } from './tex-auth';
import { TexScope } from './tex-scope';

/**
 * Tex's SDK `recall()` (`POST /recall`, outside the seed, which covers the write): Cairn's hybrid
 * search over what the scope's user can see — the org's memories of that user, every session — split
 * as Tex answers: what was said (`turns`), what was observed in it (`observations`), and the entities
 * they mention. `score` is the query's cosine similarity to the memory, as Tex's is.
 */
export const TexRecallRequest = z.object({
  q: z.string().trim().min(1).max(10_000),
  scope: TexScope,
  /** The SDK sends it beside a hierarchical scope id, which Cairn refuses (TexScope). */
  session_id: z.string().min(1).max(255).optional(),
  /** `active` and `deep` search the same memories here: Cairn has one tier. */
  mode: z.enum(['active', 'deep']).default('active'),
  top_k: z.number().int().min(1).max(100).default(10),
  min_score: z.number().min(-1).max(1).optional(),
  include_timeline: z.boolean().default(false),
  probable_answer: z.boolean().optional(),
});

const RecallHit = z.object({
  /** A turn's fragment id (as the write's active_fragment_ids name it); an observation's memory id without `mem_`. */
  id: z.string(),
  text: z.string(),
  score: z.number(),
  kind: z.enum(['turn', 'observation']),
  timestamp: z.string(),
  timestamp_ms: z.number().int(),
  time_uncertain: z.boolean(),
});

export const TexRecallResponse = z.object({
  hits: z.object({
    observations: z.array(RecallHit),
    turns: z.array(RecallHit),
    entities: z.array(z.object({ id: z.string(), label: z.string(), score: z.number() })),
  }),
  timeline: z.null(),
  /** The best hit's score (0 without hits): it orders, it is no probability, as Tex says of its own. */
  confidence: z.number(),
  mode: z.enum(['active', 'deep']),
  usage: z.object({ tokens_in: z.number().int(), tokens_out: z.number().int() }),
  probable_answer: z.null(),
  probable_answer_reason: z.literal('not_enabled'),
});

export function texRecallRoutes(router: Router, search: SearchDeps): void {
  router.post('/recall', requirePermission('search'), async (req, res) => {
    const body = parseWith(TexRecallRequest, req.body);
    const { tenant } = principalOf(req);
    // With an access token, the token's user is the reader when the scope names none (as a write's).
    const userId = checkActsFor(req, body.scope.user_id, 'scope.user_id');
    const outcome = await searchMemories(search, {
      tenant,
      query: body.q,
      plan: planFor('hybrid', body.top_k),
      filters: { org_id: body.scope.org_id, user_id: userId },
      similarity: true,
    });
    const hits = outcome.results.map((result) => ({ result, hit: recallHit(result) })).filter(({ hit }) => body.min_score === undefined || hit.score >= body.min_score);
    const entities = new Map<string, { id: string; label: string; score: number }>();
    for (const { result, hit } of hits) {
      for (const entity of result.entities) if (!entities.has(entity.id)) entities.set(entity.id, { id: entity.id, label: entity.name, score: hit.score });
    }
    res.json({
      hits: {
        observations: hits.filter(({ hit }) => hit.kind === 'observation').map(({ hit }) => hit),
        turns: hits.filter(({ hit }) => hit.kind === 'turn').map(({ hit }) => hit),
        entities: [...entities.values()],
      },
      timeline: null,
      confidence: hits[0]?.hit.score ?? 0,
      mode: body.mode,
      usage: { tokens_in: countTokens(body.q), tokens_out: 0 },
      probable_answer: null,
      probable_answer_reason: 'not_enabled',
    });
  });
}

function recallHit(result: SearchResult): z.infer<typeof RecallHit> {
  const said = result.provenance.timestamp && Number.isFinite(Date.parse(result.provenance.timestamp)) ? result.provenance.timestamp : undefined;
  const at = said ?? result.created_at;
  return {
    id: result.id.replace(/^mem_/, ''),
    text: result.text,
    score: result.similarity ?? 0,
    kind: result.type === 'episode' ? 'turn' : 'observation',
    timestamp: new Date(at).toISOString(),
    timestamp_ms: Date.parse(at),
    // Without the turn's own time, only when it was stored is known.
    time_uncertain: !said,
  };
}
