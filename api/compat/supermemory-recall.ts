import type { Request, Router } from 'express';
import { z } from 'zod';
import type { Memory, MemoryType } from '../../lib/domain/memory';
import { badInput } from '../../lib/errors';
import type { IngestJobs } from '../../lib/jobs';
import type { MemoryListings } from '../../lib/memory-listings';
import { searchMemories, type SearchDeps, type SearchResult } from '../../lib/search/execute';
import { planFor, type SearchFilters } from '../../lib/search/plan';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import type { Containers } from './containers';
import { DocumentId, heldDocument } from './supermemory-documents';

/**
 * supermemory's recall (`client.search` and `search.memories` → /v4/search; `search.documents` and
 * `search.execute` → /v3/search; `client.profile` and the @supermemory/tools middleware → /v4/profile): outside the seed, whose tags name them, in the shapes
 * of the `supermemory` npm SDK's types (4.25). Both run Cairn's hybrid search.
 */
const Tag = z.string().min(1).max(255);

/** One condition of supermemory's filter language; Cairn matches metadata values exactly. */
const Condition = z.object({
  key: z.string().min(1).max(255),
  value: z.string(),
  filterType: z.enum(['metadata', 'numeric', 'array_contains', 'string_contains']).optional(),
  ignoreCase: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
  negate: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
  numericOperator: z.enum(['>', '<', '>=', '<=', '=']).optional(),
});
type Condition = z.infer<typeof Condition>;
/** Nested expressions are read (to be refused by name in metadataFilter), not described: the OpenAPI document has no recursion. */
const Nested = z.union([z.object({ AND: z.array(z.unknown()) }), z.object({ OR: z.array(z.unknown()) })]);
const Items = z.array(z.union([Condition, Nested])).min(1).max(100);
/** supermemory's `filters`: one AND of conditions, or one OR (also read by documents.list). */
export const Expression = z.union([z.object({ AND: Items }), z.object({ OR: Items })]);
type Expression = z.infer<typeof Expression>;

export const SupermemorySearchRequest = z.object({
  q: z.string().trim().min(1).max(10_000),
  containerTag: Tag.optional(),
  limit: z.number().int().min(1).max(100).default(10),
  /** 0 keeps every result; higher keeps only results at least this similar to the query. */
  threshold: z.number().min(0).max(1).optional(),
  /** Cairn's memories are the document's chunks and what was extracted from them: every mode searches them. */
  searchMode: z.enum(['memories', 'hybrid', 'documents']).default('memories'),
  filters: Expression.optional(),
  // Accepted and not used: Cairn's hybrid search answers as it is.
  include: z.record(z.string(), z.unknown()).optional(),
  rerank: z.boolean().optional(),
  rewriteQuery: z.boolean().optional(),
  aggregate: z.boolean().optional(),
});

export const SupermemoryProfileRequest = z.object({
  containerTag: Tag,
  q: z.string().trim().max(10_000).optional(),
  threshold: z.number().min(0).max(1).optional(),
  filters: Expression.optional(),
  /** What the @supermemory/tools middleware sends (["static", "dynamic"]); both are always answered. */
  include: z.array(z.string()).optional(),
});

export const SupermemoryDocumentSearchRequest = z.object({
  q: z.string().trim().min(1).max(10_000),
  containerTag: Tag.optional(),
  containerTags: z.array(Tag).max(100).optional(),
  /** A document (the id `POST /v3/documents` answered) to search within. */
  docId: DocumentId.optional(),
  limit: z.number().int().min(1).max(100).default(10),
  /** Chunks at least this similar to the query are marked relevant; the others are left out. */
  chunkThreshold: z.number().min(0).max(1).optional(),
  filters: Expression.optional(),
  // Accepted and not used.
  documentThreshold: z.number().optional(),
  includeFullDocs: z.boolean().optional(),
  includeSummary: z.boolean().optional(),
  onlyMatchingChunks: z.boolean().optional(),
  rerank: z.boolean().optional(),
  rewriteQuery: z.boolean().optional(),
  categoriesFilter: z.array(z.string()).optional(),
});

export const SupermemoryDocumentSearchResponse = z.object({
  results: z.array(
    z.object({
      documentId: z.string(),
      chunks: z.array(z.object({ content: z.string(), isRelevant: z.boolean(), score: z.number() })),
      /** The best chunk's similarity. */
      score: z.number(),
      title: z.string().nullable(),
      type: z.string().nullable(),
      metadata: z.record(z.string(), z.unknown()).nullable(),
      createdAt: z.string(),
      updatedAt: z.string(),
    }),
  ),
  timing: z.number(),
  total: z.number(),
});

/** How many memories a document search ranks for each document it answers with. */
const CHUNKS_PER_DOCUMENT = 5;

export const SupermemorySearchResult = z.object({
  id: z.string(),
  /** A memory result's text (searchMode memories or hybrid). */
  memory: z.string().optional(),
  /** A chunk result's text (searchMode documents). */
  chunk: z.string().optional(),
  /** Cosine similarity of the query and the memory, 0..1. */
  similarity: z.number(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  updatedAt: z.string(),
  version: z.null(),
});
const SearchResults = z.object({ results: z.array(SupermemorySearchResult), timing: z.number(), total: z.number() });
export const SupermemorySearchResponse = SearchResults;
export const SupermemoryProfileResponse = z.object({
  profile: z.object({ static: z.array(z.string()), dynamic: z.array(z.string()) }),
  searchResults: SearchResults.optional(),
});

/**
 * What a profile calls lasting (static): what its writer marked static (Tex's memories.add `isStatic`,
 * kept in the metadata of a document's memories), then facts and preferences; and recent (dynamic): the
 * other episodes, events and emotions.
 */
const STATIC_MARK = 'isStatic';
const LASTING: MemoryType[] = ['fact', 'preference'];
const RECENT: MemoryType[] = ['episode', 'temporal_event', 'emotion'];
const PROFILE_SIZES = { static: 50, dynamic: 20 };
const markedStatic = (memory: Memory) => memory.metadata?.[STATIC_MARK] === true;

/**
 * supermemory's filters as Cairn's metadata filter: conditions on metadata values, equal (ANDed), or a
 * key equal to any of several values (ORed). Anything else is refused, not ignored: a dropped
 * condition would widen the results.
 */
export function metadataFilter(expression: Expression | undefined): SearchFilters['metadata'] {
  if (!expression) return undefined;
  const value = (condition: Condition): string | number => {
    const yes = (flag: boolean | string | undefined) => flag === true || flag === 'true';
    const numeric = condition.filterType === 'numeric';
    if ((condition.filterType && condition.filterType !== 'metadata' && !numeric) || yes(condition.negate) || yes(condition.ignoreCase) || (condition.numericOperator ?? '=') !== '=') {
      throw badInput(`filters: ${JSON.stringify(condition)} is not supported: Cairn matches metadata values exactly (no negation, ranges, case folding or substrings)`);
    }
    if (numeric && !Number.isFinite(Number(condition.value))) throw badInput(`filters: ${condition.key} is numeric but ${JSON.stringify(condition.value)} is not a number`);
    return numeric ? Number(condition.value) : condition.value;
  };
  const leaves = (items: z.infer<typeof Items>) =>
    items.map((item) => {
      if ('key' in item) return item;
      throw badInput('filters: nested AND/OR is not supported: give one AND of conditions, or one OR over a single key');
    });
  if ('AND' in expression) {
    const filter: NonNullable<SearchFilters['metadata']> = {};
    for (const condition of leaves(expression.AND)) {
      if (Object.hasOwn(filter, condition.key)) throw badInput(`filters: ${condition.key} is given twice under AND`);
      filter[condition.key] = value(condition);
    }
    return filter;
  }
  const conditions = leaves(expression.OR);
  const keys = new Set(conditions.map((condition) => condition.key));
  if (keys.size > 1) throw badInput('filters: OR is supported over the values of one key only');
  return { [conditions[0]!.key]: conditions.map(value) };
}

export function supermemoryRecallRoutes(router: Router, jobs: IngestJobs, search: SearchDeps, listings: MemoryListings, containers: Containers): void {
  async function recall(req: Request, request: { q: string; containerTag?: string; limit: number; threshold?: number; filters?: Expression }, as: 'memory' | 'chunk') {
    const started = performance.now();
    const filters: SearchFilters = { ...containers.filtersOf(req, request.containerTag ? [request.containerTag] : undefined), metadata: metadataFilter(request.filters) };
    const outcome = await searchMemories(search, { tenant: principalOf(req).tenant, query: request.q, plan: planFor('hybrid', request.limit), filters, similarity: true });
    // Without comparable vectors (a model change awaiting its reindex: BM25 alone answered), a result's
    // similarity is its score relative to the best, and no threshold applies.
    const comparable = outcome.methods.includes('knn');
    const best = outcome.results[0]?.score || 1;
    const scored = outcome.results.map((result) => ({ result, similarity: comparable ? (result.similarity ?? 0) : result.score / best }));
    const kept = scored.filter(({ similarity }) => !comparable || request.threshold === undefined || similarity >= request.threshold);
    const results = kept.map(({ result, similarity }) => recallResult(result, similarity, as));
    return { results, timing: Math.round(performance.now() - started), total: results.length };
  }

  router.post('/v4/search', requirePermission('search'), async (req, res) => {
    const body = parseWith(SupermemorySearchRequest, req.body);
    res.json(await recall(req, body, body.searchMode === 'documents' ? 'chunk' : 'memory'));
  });

  // search.documents() and search.execute(): the best memories, grouped by the document (job) they came from.
  router.post('/v3/search', requirePermission('search'), async (req, res) => {
    const body = parseWith(SupermemoryDocumentSearchRequest, req.body);
    const { tenant } = principalOf(req);
    const started = performance.now();
    const tags = [...(body.containerTag ? [body.containerTag] : []), ...(body.containerTags ?? [])];
    const source = body.docId ? (await heldDocument(jobs, containers, req, body.docId)).source_id : undefined;
    const filters: SearchFilters = { ...containers.filtersOf(req, tags.length ? tags : undefined), source_ids: source ? [source] : undefined, metadata: metadataFilter(body.filters) };
    const limit = Math.min(200, body.limit * CHUNKS_PER_DOCUMENT);
    const outcome = await searchMemories(search, { tenant, query: body.q, plan: planFor('hybrid', limit), filters, similarity: true });
    const documents = new Map<string, SearchResult[]>();
    for (const result of outcome.results) {
      if (body.docId && result.provenance.job_id !== body.docId) continue;
      // Without comparable vectors (BM25 alone answered) there is no similarity to hold to a threshold.
      if (body.chunkThreshold !== undefined && outcome.methods.includes('knn') && (result.similarity ?? 0) < body.chunkThreshold) continue;
      documents.set(result.provenance.job_id, [...(documents.get(result.provenance.job_id) ?? []), result]);
    }
    const results = [...documents.entries()].slice(0, body.limit).map(([documentId, memories]) => {
      const first = memories[0]!;
      const chunks = memories.map((memory) => ({ content: memory.text, isRelevant: true, score: memory.similarity ?? 0 }));
      return {
        documentId,
        chunks,
        score: Math.max(...chunks.map((chunk) => chunk.score)),
        title: first.provenance.file_name ?? null,
        type: first.provenance.source_url ? 'webpage' : first.provenance.format === 'PDF' ? 'pdf' : first.provenance.format === 'CONVERSATION' ? 'conversation' : 'text',
        metadata: first.metadata ?? null,
        createdAt: first.created_at,
        updatedAt: first.updated_at ?? first.created_at,
      };
    });
    res.json({ results, timing: Math.round(performance.now() - started), total: results.length });
  });

  router.post('/v4/profile', requirePermission('search'), async (req, res) => {
    const body = parseWith(SupermemoryProfileRequest, req.body);
    const { tenant } = principalOf(req);
    const metadata = metadataFilter(body.filters);
    const container = containers.filtersOf(req, [body.containerTag]);
    const listed = async (filters: SearchFilters, size: number) => (await listings.list(tenant, { ...container, ...filters }, size)).memories;
    const [marked, lasting, recent, searchResults] = await Promise.all([
      // A filter naming isStatic itself stands; the mark is checked on what it lists.
      listed({ metadata: { [STATIC_MARK]: true, ...metadata } }, PROFILE_SIZES.static),
      listed({ types: LASTING, metadata }, PROFILE_SIZES.static),
      // Enough to fill the dynamic side once the marked ones among them are left to the static side.
      listed({ types: RECENT, metadata }, PROFILE_SIZES.dynamic + PROFILE_SIZES.static),
      body.q ? recall(req, { q: body.q, containerTag: body.containerTag, limit: 10, threshold: body.threshold, filters: body.filters }, 'memory') : undefined,
    ]);
    // A profile lists what is known once: a turn's fragment and its enrichment often say the same words.
    const texts = (memories: Memory[], size: number) => [...new Set(memories.map((memory) => memory.text))].slice(0, size);
    const statics = texts([...marked.filter(markedStatic), ...lasting], PROFILE_SIZES.static);
    const dynamics = texts(recent.filter((memory) => !markedStatic(memory) && !statics.includes(memory.text)), PROFILE_SIZES.dynamic);
    res.json({ profile: { static: statics, dynamic: dynamics }, ...(searchResults ? { searchResults } : {}) });
  });
}

function recallResult(result: SearchResult, similarity: number, as: 'memory' | 'chunk') {
  return {
    id: result.id,
    [as]: result.text,
    similarity,
    metadata: result.metadata ?? null,
    updatedAt: result.updated_at ?? result.created_at,
    version: null,
  };
}
