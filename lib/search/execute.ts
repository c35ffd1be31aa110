import type { Client, estypes } from '@elastic/elasticsearch';
import { describeMismatch, type EmbeddingMatch } from '../elasticsearch/embedding-match';
import { sayingKey, type Memory } from '../domain/memory';
import { badInput, upstreamFailure } from '../errors';
import { cosine, type Embedder } from '../models/embedder';
import { within } from '../promises';
import { filterClauses } from './filters';
import { fuseRankings, type Ranking } from './fusion';
import { stemmedText } from './analysis';
import { withinClauseBudget } from './clause-budget';
import { dateWindowsOf } from './query-dates';
import type { Bm25Spec, SearchFilters, SearchMethod, SearchPlan } from './plan';

export interface SearchDeps {
  es: Client;
  /** The memories alias. */
  index: string;
  embedder?: Embedder;
  /** When the index was built for another model than `embedder`, kNN is skipped (its vectors are not comparable). */
  embeddingMatch?: EmbeddingMatch;
}

export interface SearchRequest {
  tenant: string;
  query: string;
  plan: SearchPlan;
  filters?: SearchFilters;
  /** Also give each result its cosine similarity to the query (`similarity`), where vectors compare. */
  similarity?: boolean;
}

export type SearchResult = Memory & {
  score: number;
  /** 1-based rank of the memory in each method that found it. */
  ranks: Partial<Record<SearchMethod, number>>;
  /** Cosine similarity of the query and the memory, when asked for and the index's vectors compare. */
  similarity?: number;
};

export interface SearchOutcome {
  results: SearchResult[];
  /** The methods that actually ran (kNN is dropped while the index awaits a reindex). */
  methods: SearchMethod[];
  /** Why the answer differs from what was asked, for the caller to show. */
  warnings: string[];
}

/** Runs any search plan: each method under the same filters, then fusion, then the limit. */
export async function executeSearch(deps: SearchDeps, request: SearchRequest): Promise<SearchResult[]> {
  return (await searchMemories(deps, request)).results;
}

/** executeSearch, also saying which methods ran and why any were left out. */
export async function searchMemories(deps: SearchDeps, request: SearchRequest): Promise<SearchOutcome> {
  const query = request.query.trim();
  if (!query) throw badInput('query must not be empty');
  const filter = filterClauses(request.tenant, request.filters);
  const comparable = await withComparableVectors(deps, request.plan);
  const warnings = comparable.warnings;
  let plan = comparable.plan;
  if (plan.methods.includes('knn') && !deps.embedder) throw badInput('vector search needs an embedding model, and none is configured');
  // BM25 searches while the query is embedded (awaited after it: a failure meanwhile is handled).
  const lexical = plan.methods.includes('bm25') ? bm25(deps, query, plan.bm25, filter, plan.candidates) : undefined;
  lexical?.catch(() => undefined);
  const embedded = plan.methods.includes('knn') ? await queryVector(deps.embedder!, query) : undefined;
  // The embedding model not answering (down, slow, failing) leaves BM25 to answer alone, saying so,
  // as a model change does: a search is not held for as long as the model's own retries take.
  if (embedded && 'failure' in embedded) {
    plan = withoutKnn(plan);
    warnings.push(`kNN skipped, answered with BM25 only: the embedding model did not embed the query (${embedded.failure})`);
  }
  const vector = embedded && 'vector' in embedded ? embedded.vector : undefined;
  const hitsByMethod = await Promise.all(
    plan.methods.map((method) => (method === 'bm25' ? (lexical ?? bm25(deps, query, plan.bm25, filter, plan.candidates)) : knn(deps, vector!, filter, plan.candidates))),
  );
  const documents = new Map<string, Memory>();
  const rankings: Ranking[] = hitsByMethod.map((hits, i) => {
    for (const hit of hits) if (hit._source) documents.set(hit._id!, hit._source);
    return { method: plan.methods[i]!, ids: hits.map((hit) => hit._id!), scores: hits.map((hit) => hit._score ?? 0) };
  });
  const fused = distinct(fuseRankings(rankings, plan, documents), documents);
  const results: SearchResult[] = fused.slice(0, plan.limit).map(({ id, score, ranks }) => ({ ...documents.get(id)!, score, ranks }));
  if (request.similarity && vector) await addSimilarities(deps, results, vector, hitsByMethod[plan.methods.indexOf('knn')]!);
  return { results, methods: plan.methods, warnings };
}

/**
 * Each result's cosine similarity to the query: from kNN's score where kNN found it (Elasticsearch
 * scores cosine as (1 + cos) / 2), else from its stored vector (a memory BM25 alone brought in).
 */
async function addSimilarities(deps: SearchDeps, results: SearchResult[], vector: number[], knnHits: Hit[]): Promise<void> {
  const scored = new Map(knnHits.map((hit) => [hit._id!, 2 * (hit._score ?? 0) - 1]));
  const missing = results.filter((result) => !scored.has(result.id)).map((result) => result.id);
  if (missing.length) {
    const { docs } = await deps.es.mget<{ embedding?: number[] }>({ index: deps.index, ids: missing, _source_includes: ['embedding'] });
    for (const doc of docs) {
      const embedding = 'found' in doc && doc.found ? doc._source?.embedding : undefined;
      if (embedding) scored.set(doc._id, cosine(vector, embedding));
    }
  }
  for (const result of results) result.similarity = Math.max(0, Math.min(1, scored.get(result.id) ?? 0));
}

/**
 * One answer per thing said: the same text from the same turns of the same source counts once, at its
 * best rank, as the memory stored first (a Tex turn is stored twice — the active fragment, whose id the
 * write answered with, and later its passive enrichment).
 */
function distinct<T extends { id: string }>(fused: T[], documents: Map<string, Memory>): T[] {
  const keyOf = (memory: Memory | undefined) => memory && sayingKey(memory);
  const first = new Map<string, string>();
  for (const { id } of fused) {
    const memory = documents.get(id);
    const key = keyOf(memory);
    if (!key) continue;
    const held = first.get(key);
    if (!held || documents.get(held)!.created_at > memory!.created_at) first.set(key, id);
  }
  const seen = new Set<string>();
  return fused.flatMap((entry) => {
    const key = keyOf(documents.get(entry.id));
    if (!key) return [entry];
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ ...entry, id: first.get(key)! }];
  });
}

/**
 * A query vector from the configured model against an index of another model's vectors ranks noise
 * (or fails on other dims): until the reindex swaps, kNN is dropped and BM25 answers alone.
 */
async function withComparableVectors(deps: SearchDeps, plan: SearchPlan): Promise<{ plan: SearchPlan; warnings: string[] }> {
  if (!plan.methods.includes('knn') || !deps.embeddingMatch) return { plan, warnings: [] };
  const mismatch = await deps.embeddingMatch.mismatchOf('memories');
  if (!mismatch) return { plan, warnings: [] };
  const warning =
    `kNN skipped, answered with BM25 only: ${describeMismatch(mismatch)}. ` +
    'Vector search returns once a reindex backfill has re-embedded the memories.';
  return { plan: withoutKnn(plan), warnings: [warning] };
}

type Hit = estypes.SearchHit<Memory>;

async function bm25(deps: SearchDeps, query: string, spec: Bm25Spec, filter: estypes.QueryDslQueryContainer[], size: number): Promise<Hit[]> {
  const stems = stemmedText(query);
  const [asStemmed, asWritten] = [stems && withinClauseBudget(stems), withinClauseBudget(query)];
  const should: estypes.QueryDslQueryContainer[] = Object.entries(spec.fields).flatMap(([field, boost]) => {
    const text = field.endsWith('stems') ? asStemmed : asWritten;
    return text ? [{ match: { [field]: { query: text, boost } } }] : [];
  });
  const names = namedSpeakers(query);
  // A constant-score bonus, never a match on its own: speaking is no reason to rank without the topic.
  const speaker = spec.speakerBoost > 0 && names.length ? [{ terms: { 'provenance.speakers': names, boost: spec.speakerBoost } }] : [];
  if (should.length === 0) return [];
  return run(deps, {
    size,
    query: { bool: { must: { bool: { should, minimum_should_match: 1 } }, should: [...speaker, ...dateBonus(query, spec.dateBoost)], filter } },
  });
}

/** A constant bonus for memories dated inside a window the query names; like the speaker's, never a match alone. */
function dateBonus(query: string, boost: number): estypes.QueryDslQueryContainer[] {
  const windows = boost > 0 ? dateWindowsOf(query, new Date()) : [];
  if (windows.length === 0) return [];
  const ranges = windows.flatMap((window) => DATED_FIELDS.map((field) => ({ range: { [field]: window } })));
  return [{ constant_score: { filter: { bool: { should: ranges, minimum_should_match: 1 } }, boost } }];
}

const DATED_FIELDS = ['provenance.timestamp', 'provenance.session_date', 'provenance.document_date', 'event_dates'];

/** Words of the query that could be a speaker's name, as written and capitalised (speakers are keywords). */
function namedSpeakers(query: string): string[] {
  const words = query.replace(/['’]s\b/g, '').match(/[\p{L}\p{N}][\p{L}\p{N}_.-]*/gu) ?? [];
  const names = words.filter((word) => !ROLES.has(word.toLowerCase())).flatMap((word) => [word, word[0]!.toUpperCase() + word.slice(1)]);
  return [...new Set(names)].slice(0, 64);
}

// Role names stand in for speakers in unnamed chats; "the user" in a query names no one in particular.
const ROLES = new Set(['user', 'assistant', 'system', 'tool']);

/** How long a search waits for its query's embedding before answering without kNN. */
const QUERY_EMBED_BUDGET_MS = 5_000;

/** The query's vector, or why there is none within QUERY_EMBED_BUDGET_MS; never a rejection. */
function queryVector(embedder: Embedder, query: string): Promise<{ vector: number[] } | { failure: string }> {
  const embedded = Promise.resolve()
    .then(() => embedder.embed([query], { urgent: true }))
    .then(
      ([vector]): { vector: number[] } | { failure: string } => ({ vector: vector! }),
      (error) => ({ failure: String((error as Error)?.message ?? error).slice(0, 300) }),
    );
  return within(embedded, QUERY_EMBED_BUDGET_MS, () => ({ failure: `no answer within ${QUERY_EMBED_BUDGET_MS / 1000} s` }));
}

/** A plan without kNN: BM25 alone, in its own order when nothing is left to fuse. */
function withoutKnn(plan: SearchPlan): SearchPlan {
  const methods = plan.methods.filter((method) => method !== 'knn');
  return methods.length ? { ...plan, methods } : { ...plan, methods: ['bm25'], fusion: 'none' };
}

async function knn(deps: SearchDeps, vector: number[], filter: estypes.QueryDslQueryContainer[], k: number): Promise<Hit[]> {
  return run(deps, {
    size: k,
    // The filter sits inside the kNN clause: HNSW then searches only the allowed memories
    // (pre-filtering), instead of finding k neighbours and dropping the other tenants' afterwards.
    knn: { field: 'embedding', query_vector: vector, k, num_candidates: Math.min(10_000, Math.max(100, k * 4)), filter },
  });
}

async function run(deps: SearchDeps, body: Omit<estypes.SearchRequest, 'index'>): Promise<Hit[]> {
  try {
    const response = await deps.es.search<Memory>({ index: deps.index, _source: { excludes: ['embedding', 'embedding_model', 'stems', 'context_stems'] }, ...body });
    return response.hits.hits;
  } catch (error) {
    const status = (error as { meta?: { statusCode?: number } }).meta?.statusCode;
    if (status === 400) throw badInput(`the search was rejected: ${(error as Error).message}`);
    throw upstreamFailure(`Elasticsearch search failed: ${(error as Error).message}`);
  }
}
