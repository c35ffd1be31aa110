import { z } from 'zod';
import { MemoryType } from '../domain/memory';

/**
 * Search described as data (after graphiti's search package): which methods retrieve candidates,
 * how their rankings are fused, which filters bound them and how many results come back. One
 * executor (execute.ts) runs any plan; recipes below are the named presets the API modes select.
 */

const id = z.string().min(1).max(255);
/** A metadata value to match: no stored value is longer (METADATA_LIMITS.valueChars), nor could a term be. */
const scalar = z.union([
  z.string().max(8192).refine((value) => Buffer.byteLength(value) <= 32_000, 'at most 32,000 bytes of UTF-8'),
  z.number(),
  z.boolean(),
]);

/** Every filter applies inside each method (kNN pre-filters), so a result never escapes its scope. */
export const SearchFilters = z
  .object({
    space_id: id.optional(),
    /** Matches memories carrying any of the tags. */
    container_tags: z.array(id).max(100).optional(),
    org_id: id.optional(),
    user_id: id.optional(),
    customer_id: id.optional(),
    agent_id: id.optional(),
    session_id: id.optional(),
    types: z.array(MemoryType).min(1).optional(),
    /** Matches memories in any of the categories. */
    categories: z.array(id).max(100).optional(),
    source_ids: z.array(id).max(100).optional(),
    document_ids: z.array(z.string().min(1).max(512)).max(100).optional(),
    /** Memories that mention any of these entities (GET /v1/entities lists their ids). */
    entity_ids: z.array(id).max(100).optional(),
    /** When the memory was stored. */
    created_after: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
    created_before: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
    /** When what the memory talks about happened (session date, or dates found in the text). */
    occurred_after: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
    occurred_before: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
    /** Exact matches on metadata keys; an array matches any of its values. */
    metadata: z.record(z.string().min(1).max(255).regex(/^[^*]+$/, 'no wildcards in metadata keys'), z.union([scalar, z.array(scalar).min(1).max(100)])).optional(),
  })
  .strict();
export type SearchFilters = z.infer<typeof SearchFilters>;

export const SearchMethod = z.enum(['bm25', 'knn']);
export type SearchMethod = z.infer<typeof SearchMethod>;

/**
 * How the BM25 method matches. `stems`/`context_stems` hold client-side stemmed words (analysis.ts),
 * `text` the words as written (exact names, numbers, memories written before stems existed), `context`
 * the neighbouring turns of a conversation.
 */
export const Bm25Spec = z.object({
  /** Field → boost; the query is stemmed for the `*stems` fields, sent as written to the others. */
  fields: z.partialRecord(z.enum(['text', 'stems', 'context', 'context_stems', 'entities.name']), z.number().positive()),
  /**
   * Constant added to memories spoken by someone the query names: "what did Melanie paint?" is
   * answered by Melanie's own turns far more often than by the turns that merely mention her.
   */
  speakerBoost: z.number().min(0),
  /**
   * Constant added to memories from the days the query names ("on 13 October 2023", "in June", "last
   * week"): by the session or document date, or a date found in the text (query-dates.ts).
   */
  dateBoost: z.number().min(0),
});
export type Bm25Spec = z.infer<typeof Bm25Spec>;

/** Shares of a neighbouring turn's fused score a turn receives (fusion.ts). */
export const NeighbourWeights = z.object({
  /** From the turn just before. */
  previous: z.number().min(0).max(1),
  /** From the turn just before when that turn asks a question: this turn is likely its answer. */
  after_question: z.number().min(0).max(1),
  /** From the turn just after. */
  next: z.number().min(0).max(1),
});
export type NeighbourWeights = z.infer<typeof NeighbourWeights>;

export const SearchPlan = z.object({
  methods: z.array(SearchMethod).min(1),
  bm25: Bm25Spec,
  /** How several methods' rankings become one: reciprocal rank fusion, or the first method's order. */
  fusion: z.enum(['rrf', 'none']),
  /** RRF's damping constant: larger flattens the advantage of the very top ranks. */
  rrfK: z.number().positive(),
  /** Per-method weights in the fusion (default 1 each). */
  weights: z.partialRecord(SearchMethod, z.number().positive()).default({}),
  /** Candidates each method retrieves before fusion. */
  candidates: z.number().int().positive().max(1000),
  /** Results returned. */
  limit: z.number().int().positive().max(200),
  /**
   * Conversation context: a turn's neighbours in the same session that also ranked share part of its
   * score, since an answer often sits in the reply to the turn that matched the question.
   */
  neighbours: NeighbourWeights.optional(),
});
export type SearchPlan = z.infer<typeof SearchPlan>;

export const SEARCH_MODES = ['hybrid', 'bm25', 'knn'] as const;
export const SearchMode = z.enum(SEARCH_MODES);
export type SearchMode = z.infer<typeof SearchMode>;

const bm25: Bm25Spec = { fields: { stems: 1, context_stems: 0.4, text: 0.3 }, speakerBoost: 2, dateBoost: 8 };
const base = { bm25, rrfK: 60, weights: {}, candidates: 100, limit: 10 } as const;

/**
 * Named presets: the API's `mode` picks one and overrides `limit` with `top_k`. Measured on the LoCoMo
 * development conversations (bench/retrieval.ts): stemming +10 points recall@10 for BM25, the speaker
 * boost +2 to +4, a date named in the query +2. kNN embeds each turn with its neighbours
 * (domain/memory.ts embeddingText), which makes it worth 0.6 of BM25 in the fusion (it was 0.3 while
 * turns were embedded alone); a small RRF k lets the top ranks lead. Neighbour sharing +3, and a reply
 * taking most of the question's score lifts recall@1 and @5.
 */
export const RECIPES: Record<SearchMode, SearchPlan> = {
  hybrid: { ...base, methods: ['bm25', 'knn'], fusion: 'rrf', rrfK: 10, weights: { bm25: 1, knn: 0.6 }, neighbours: { previous: 0.3, after_question: 0.6, next: 0.3 } },
  bm25: { ...base, methods: ['bm25'], fusion: 'none' },
  knn: { ...base, methods: ['knn'], fusion: 'none' },
};

export function planFor(mode: SearchMode, limit: number): SearchPlan {
  const recipe = RECIPES[mode];
  return { ...recipe, limit, candidates: Math.max(recipe.candidates, limit * 2) };
}
