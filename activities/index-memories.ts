import { getJson } from '../lib/blob/store';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import { embeddingText, type StoredMemory } from '../lib/domain/memory';
import { isoDate } from '../lib/domain/dates';
import { memoryScope, requestProvenance } from '../lib/domain/scope';
import { memoryId } from '../lib/ids';
import { stemmedText } from '../lib/search/analysis';
import { bulkFailure } from '../lib/elasticsearch/client';
import { embedPrefetched } from '../lib/models/embedding-prefetch';
import type { ActivityDeps } from './deps';
import { livenessHeartbeat, stopIfCancelled } from './liveness';
import type { ResolvedMemory } from './resolve-entities';
import type { BatchRange, ChunkResult, IndexResult, ParseResult, ResolveResult, StageInput } from './types';

/** One batch of resolved memories → embedded memory documents in Elasticsearch, searchable on return. */
export function createIndexActivity(deps: ActivityDeps) {
  return async function indexMemories(
    { jobId, sourceId, request }: StageInput,
    parsed: ParseResult,
    chunked: ChunkResult,
    resolved: ResolveResult,
    range: BatchRange,
  ): Promise<IndexResult> {
    const heartbeat = livenessHeartbeat();
    const memories = await getJson<ResolvedMemory[]>(deps.blobs, resolved.resolvedKey);
    if (memories.length === 0) return { indexed: 0, memoryIds: [] };
    const chunks = await getJson<Chunk[]>(deps.blobs, chunked.chunksKey);
    // The session date travels in the parse result; older runs' results lack it and read the blob.
    const sessionDate =
      parsed.sessionDate ?? (request.format === 'CONVERSATION' ? (await getJson<ParsedDocument>(deps.blobs, parsed.parsedKey)).sessionDate : undefined);
    const now = new Date().toISOString();

    // The index was built for another embedding model: wait (retryably) for the reindex rather than write
    // these memories without vectors. A waiting job completes whole, with the right vectors, after the
    // swap; a vectorless memory would be a "completed" job that kNN cannot find, fixed only if a reindex
    // happened to run afterwards. Checked before embedding (no wasted model calls) and again before the write.
    if (deps.embedder) await deps.embeddingMatch.assertVectorsFit('memories', { fresh: false });
    // Extraction started these embeddings (lib/models/embedding-prefetch.ts); what it did not is embedded here.
    const vectors = deps.embedder ? await embedPrefetched(deps.embedder, memories.map(embeddingText)) : undefined;
    heartbeat(range);

    const docs: StoredMemory[] = memories.map((memory, i) => {
      const chunk = chunks[memory.chunkIndex];
      // Position = chunk + ordinal within the chunk, so re-running the batch rewrites the same ids.
      const ordinal = memories.slice(0, i).filter((other) => other.chunkIndex === memory.chunkIndex).length;
      const turnIds = chunk?.turnIds;
      const doc: StoredMemory = {
        id: memoryId(request.tenant, sourceId, `${memory.chunkIndex}:${ordinal}:${memory.type}`, memory.text),
        tenant: request.tenant,
        text: memory.text,
        context: memory.context,
        stems: stemmedText(memory.text),
        context_stems: stemmedText(memory.context),
        type: memory.type,
        confidence: memory.confidence,
        entities: memory.entityRefs,
        scope: memoryScope(request.tenant, request.scope),
        provenance: {
          ...requestProvenance(request, sourceId, jobId),
          chunk_index: memory.chunkIndex,
          char_start: chunk?.charStart,
          char_end: chunk?.charEnd,
          turn_start: chunk?.turnStart,
          turn_end: chunk?.turnEnd,
          turn_ids: turnIds,
          speakers: chunk?.speakers,
          session_date: sessionDate,
          page: chunk?.page,
          // The mapping says `date`: a free-form timestamp stays in the chunk, not on the memory.
          timestamp: isoDate(chunk?.timestamp),
        },
        categories: request.categories,
        metadata: request.metadata,
        event_dates: memory.eventDates,
        created_at: now,
        updated_at: null,
      };
      if (vectors && deps.embedder) {
        doc.embedding = vectors[i];
        doc.embedding_model = deps.embedder.model;
      }
      return doc;
    });

    if (vectors) await deps.embeddingMatch.assertVectorsFit('memories');
    const writes = await keepingWhatWasThere(deps, docs);
    // A job cancelled meanwhile writes nothing more (it counts what it wrote once its writes stop).
    stopIfCancelled();
    // Every memory of the batch already there and edited: nothing to write (an empty bulk is refused).
    if (writes.length === 0) return { indexed: docs.length, memoryIds: docs.map((doc) => doc.id) };
    const response = await deps.es.bulk({
      // Searchable when the activity returns: the job is only "completed" once recall can see it.
      refresh: 'wait_for',
      operations: writes.flatMap((doc) => [{ index: { _index: deps.indices.memories, _id: doc.id } }, doc]),
    });
    if (response.errors) throw bulkFailure(response, 'memories');
    return { indexed: docs.length, memoryIds: docs.map((doc) => doc.id) };
  };
}

/**
 * What a memory already there keeps when its content is ingested again (a re-send, a retry, a
 * re-extraction write the same ids): its `created_at`, and — once edited through the API
 * (`updated_at` set) — the whole edit, which is not written over.
 */
async function keepingWhatWasThere(deps: ActivityDeps, docs: StoredMemory[]): Promise<StoredMemory[]> {
  if (docs.length === 0) return docs;
  const { docs: found } = await deps.es.mget<{ created_at?: string; updated_at?: string | null }>({
    index: deps.indices.memories,
    ids: docs.map((doc) => doc.id),
    _source: ['created_at', 'updated_at'],
  });
  const edited = new Set<string>();
  const since = new Map<string, string>();
  for (const existing of found) {
    if (!('found' in existing) || !existing.found || !existing._source) continue;
    if (existing._source.updated_at) edited.add(existing._id);
    else if (existing._source.created_at) since.set(existing._id, existing._source.created_at);
  }
  return docs.filter((doc) => !edited.has(doc.id)).map((doc) => (since.has(doc.id) ? { ...doc, created_at: since.get(doc.id)! } : doc));
}
