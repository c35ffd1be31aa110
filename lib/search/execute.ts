import type { Client, estypes } from '@elastic/elasticsearch';
import type { Memory } from '../domain/memory';
import { badInput, upstreamFailure } from '../errors';
import type { Embedder } from '../models/embedder';
import { filterClauses } from './filters';
import { fuseRankings, type Ranking } from './fusion';
import type { SearchFilters, SearchMethod, SearchPlan } from './plan';

export interface SearchDeps {
  es: Client;
  /** The memories alias. */
  index: string;
  embedder?: Embedder;
}

export interface SearchRequest {
  tenant: string;
  query: string;
  plan: SearchPlan;
  filters?: SearchFilters;
}

export type SearchResult = Memory & {
  score: number;
  /** 1-based rank of the memory in each method that found it. */
  ranks: Partial<Record<SearchMethod, number>>;
};

/** Runs any search plan: each method under the same filters, then fusion, then the limit. */
export async function executeSearch(deps: SearchDeps, request: SearchRequest): Promise<SearchResult[]> {
  const query = request.query.trim();
  if (!query) throw badInput('query must not be empty');
  const filter = filterClauses(request.tenant, request.filters);
  const { plan } = request;
  const hitsByMethod = await Promise.all(
    plan.methods.map((method) => (method === 'bm25' ? bm25(deps, query, filter, plan.candidates) : knn(deps, query, filter, plan.candidates))),
  );
  const documents = new Map<string, Memory>();
  const rankings: Ranking[] = hitsByMethod.map((hits, i) => {
    for (const hit of hits) if (hit._source) documents.set(hit._id!, hit._source);
    return { method: plan.methods[i]!, ids: hits.map((hit) => hit._id!), scores: hits.map((hit) => hit._score ?? 0) };
  });
  const fused = fuseRankings(rankings, plan, documents);
  return fused.slice(0, plan.limit).map(({ id, score, ranks }) => ({ ...documents.get(id)!, score, ranks }));
}

type Hit = estypes.SearchHit<Memory>;

const CONTEXT_BOOST = 0.4;

async function bm25(deps: SearchDeps, query: string, filter: estypes.QueryDslQueryContainer[], size: number): Promise<Hit[]> {
  return run(deps, {
    size,
    query: {
      bool: {
        should: [
          { match: { text: { query } } },
          // Neighbouring turns: the question a reply answers often holds the words the query uses.
          { match: { context: { query, boost: CONTEXT_BOOST } } },
          // Entity names are indexed separately: a question naming a person also matches what they said.
          { match: { 'entities.name': { query, boost: 0.3 } } },
        ],
        minimum_should_match: 1,
        filter,
      },
    },
  });
}

async function knn(deps: SearchDeps, query: string, filter: estypes.QueryDslQueryContainer[], k: number): Promise<Hit[]> {
  if (!deps.embedder) throw badInput('vector search needs an embedding model, and none is configured');
  const [vector] = await deps.embedder.embed([query]);
  return run(deps, {
    size: k,
    // The filter sits inside the kNN clause: HNSW then searches only the allowed memories
    // (pre-filtering), instead of finding k neighbours and dropping the other tenants' afterwards.
    knn: { field: 'embedding', query_vector: vector!, k, num_candidates: Math.min(10_000, Math.max(100, k * 4)), filter },
  });
}

async function run(deps: SearchDeps, body: Omit<estypes.SearchRequest, 'index'>): Promise<Hit[]> {
  try {
    const response = await deps.es.search<Memory>({ index: deps.index, _source: { excludes: ['embedding', 'embedding_model'] }, ...body });
    return response.hits.hits;
  } catch (error) {
    const status = (error as { meta?: { statusCode?: number } }).meta?.statusCode;
    if (status === 400) throw badInput(`the search was rejected: ${(error as Error).message}`);
    throw upstreamFailure(`Elasticsearch search failed: ${(error as Error).message}`);
  }
}
