import type { estypes } from '@elastic/elasticsearch';
import { getJson } from '../lib/blob/store';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import { embeddingText, versionOrder, type StoredMemory } from '../lib/domain/memory';
import { isoDate } from '../lib/domain/dates';
import { memoryScope, requestProvenance } from '../lib/domain/scope';
import { memoryId } from '../lib/ids';
import { beingDeleted, deletionsOf, leaseHeld } from '../lib/leases';
import { stemmedText } from '../lib/search/analysis';
import { bulkFailure, getDocument } from '../lib/elasticsearch/client';
import { EntitySplits } from '../lib/entities/splits';
import type { StoredSource } from '../lib/source-records';
import { embedPrefetched } from '../lib/models/embedding-prefetch';
import { readChunks } from './chunk-pages';
import type { ActivityDeps } from './deps';
import { livenessHeartbeat, stopIfCancelled } from './liveness';
import type { ResolvedMemory } from './resolve-entities';
import type { BatchRange, ChunkResult, IndexResult, ParseResult, ResolveResult, StageInput } from './types';

/** One batch of resolved memories → embedded memory documents in Elasticsearch, searchable on return. */
export function createIndexActivity(deps: ActivityDeps) {
  const splits = new EntitySplits(deps.es, deps.indices);
  return async function indexMemories(
    { jobId, sourceId, request, versionAt }: StageInput,
    parsed: ParseResult,
    chunked: ChunkResult,
    resolved: ResolveResult,
    range: BatchRange,
  ): Promise<IndexResult> {
    const heartbeat = livenessHeartbeat();
    const memories = await getJson<ResolvedMemory[]>(deps.blobs, resolved.resolvedKey);
    if (memories.length === 0) return { indexed: 0, memoryIds: [] };
    const chunks = new Map((await readChunks(deps.blobs, chunked, range.start, range.end)).map((chunk) => [chunk.index, chunk]));
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
      const chunk = chunks.get(memory.chunkIndex);
      // Position = chunk + ordinal within the chunk, so re-running the batch rewrites the same ids.
      const ordinal = memories.slice(0, i).filter((other) => other.chunkIndex === memory.chunkIndex).length;
      const turnIds = chunk?.turnIds;
      const doc: StoredMemory = {
        id: memoryId(request.tenant, sourceId, `${positionOf(memory.chunkIndex, chunk)}:${ordinal}:${memory.type}`, memory.text),
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
          version_at: versionAt,
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
    // The deletion leases are read with what is there, so no request falls between that read and the
    // write. Only a conversation under its id has a ledger whose later sends may outdate this job's turns.
    const [there, outdated] = await Promise.all([
      readWhatIsThere(deps, docs, request.tenant, sourceId),
      request.format === 'CONVERSATION' && request.documentId ? turnsOutdated(deps, sourceId, jobId) : undefined,
    ]);
    const current = outdated ? docs.filter((doc) => !outdated(doc.provenance.turn_start, doc.provenance.turn_end)) : docs;
    const { writes, deleted } = keepingWhatWasThere(there, current, versionAt);
    // What the batch holds: its memories, but for those deleted through the API or outdated.
    const held = deleted.size ? current.filter((doc) => !deleted.has(doc.id)) : current;
    const result: IndexResult = { indexed: held.length, memoryIds: held.map((doc) => doc.id) };
    // A job cancelled meanwhile writes nothing more (it counts what it wrote once its writes stop).
    stopIfCancelled();
    // Every memory of the batch already there and edited, or deleted: nothing to write (an empty bulk is refused).
    if (writes.length === 0) return result;
    // Searchable when the activity returns: the job is only "completed" once recall can see it.
    const response = await deps.promptRefresh.write(deps.indices.memories, () =>
      deps.es.bulk({
        refresh: 'wait_for',
        operations: writes.flatMap(({ doc, expect }) => [writeOperation(deps.indices.memories, doc.id, expect), doc]),
      }),
    );
    // A version's write that lost a race (another version wrote the memory since it was read) is a
    // conflict: the retried batch reads again and decides again.
    if (response.errors) throw bulkFailure(response, 'memories');
    // After the write: an entity merged away before it (a split healed by another job) left these
    // memories out of its repointing, and is then seen gone here.
    await splits.followMerges(request.tenant, writes.flatMap(({ doc }) => doc.entities.map((entity) => entity.id)));
    return result;
  };
}

/**
 * Which turns of a conversation sent under its id (ConversationLedger) a later send edited or removed
 * while this job was ingesting them: that send dropped what was stored of them, not what this job had
 * yet to write, which would have stayed, saying what the conversation no longer says. Known once this
 * job's own send has recorded it (the record names the job; a later send plans only after that): a
 * turn the record now holds under another job, or no longer holds. Undefined when nothing is outdated.
 */
async function turnsOutdated(deps: ActivityDeps, sourceId: string, jobId: string): Promise<((start?: number, end?: number) => boolean) | undefined> {
  const record = await getDocument<Pick<StoredSource, 'job_ids' | 'turn_jobs'>>(deps.es, { index: deps.indices.sources, id: sourceId, _source_includes: ['job_ids', 'turn_jobs'] });
  const turnJobs = record?.source.turn_jobs;
  if (!turnJobs || !record.source.job_ids?.includes(jobId)) return undefined;
  return (start, end = start) => {
    if (start === undefined) return false;
    for (let turn = start; turn <= end!; turn++) if (turnJobs[turn] !== jobId) return true;
    return false;
  };
}

type Stored = { created_at?: string; updated_at?: string | null; provenance?: { version_at?: string } };

/** What is there of the batch's memories: each one stored (with its version), and those deleted through the API. */
interface There {
  existing: Map<string, { _source: Stored; _seq_no?: number; _primary_term?: number }>;
  deleted: Set<string>;
}

/**
 * The memories, their tombstones and the source's deletion leases (lib/leases.ts), in one real-time
 * read; throws (retryably) while the source or its tenant's sources are being deleted.
 */
async function readWhatIsThere(deps: ActivityDeps, docs: StoredMemory[], tenant: string, sourceId: string): Promise<There> {
  const leases = deletionsOf(tenant, sourceId);
  const { docs: found } = await deps.es.mget<Stored & { updated_at: string }>({
    docs: [
      ...docs.map((doc) => ({ _index: deps.indices.memories, _id: doc.id, _source: ['created_at', 'updated_at', 'provenance.version_at'] })),
      ...docs.map((doc) => ({ _index: deps.indices.tombstones, _id: doc.id, _source: false })),
      ...leases.map((key) => ({ _index: deps.indices.sequences, _id: key })),
    ],
  });
  if (found.slice(2 * docs.length).some(leaseHeld)) throw beingDeleted(sourceId);
  const isFound = (hit: (typeof found)[number]) => 'found' in hit && hit.found;
  const deleted = new Set(found.slice(docs.length, 2 * docs.length).filter(isFound).map((hit) => hit._id));
  const existing: There['existing'] = new Map();
  for (const hit of found.slice(0, docs.length)) if ('found' in hit && hit.found && hit._source) existing.set(hit._id, { ...hit, _source: hit._source });
  return { existing, deleted };
}

/**
 * What a memory already there keeps when its content is ingested again (a re-send, a retry, a
 * re-extraction write the same ids): its `created_at`, and — once edited through the API
 * (`updated_at` set) — the whole edit, which is not written over; a memory deleted through the API
 * (its tombstone, lib/memories.ts) is not written again. A version of a replaceable source
 * (`versionAt`) leaves alone a memory a newer version wrote, and writes only over what it read
 * (`expect`: the memory's sequence number then, or that it was absent), so that holds in a race too.
 */
function keepingWhatWasThere({ existing, deleted }: There, docs: StoredMemory[], versionAt?: string): { writes: Write[]; deleted: Set<string> } {
  const writes: Write[] = [];
  for (const doc of docs) {
    if (deleted.has(doc.id)) continue;
    const there = existing.get(doc.id);
    if (there?._source.updated_at) continue;
    if (versionAt && there && versionOrder(there._source.provenance?.version_at, versionAt) > 0) continue;
    // A writer with no version (a job from before versions) leaves a version's memory alone.
    if (!versionAt && there?._source.provenance?.version_at) continue;
    const kept = there?._source.created_at ? { ...doc, created_at: there._source.created_at } : doc;
    const expect = !versionAt ? undefined : there ? { seqNo: there._seq_no!, primaryTerm: there._primary_term! } : 'absent';
    writes.push({ doc: kept, expect });
  }
  return { writes, deleted };
}

interface Write {
  doc: StoredMemory;
  /** For a version's write: the memory as read (written over only if unchanged), or absent (created only if still so). */
  expect?: { seqNo: number; primaryTerm: number } | 'absent';
}

function writeOperation(index: string, id: string, expect: Write['expect']): estypes.BulkOperationContainer {
  if (expect === 'absent') return { create: { _index: index, _id: id } };
  if (expect) return { index: { _index: index, _id: id, if_seq_no: expect.seqNo, if_primary_term: expect.primaryTerm } };
  return { index: { _index: index, _id: id } };
}

/**
 * Where a memory sits in its source, for its id: the chunk's index; for a conversation chunk of one
 * whole message, the message's position, so every job that ingests the message writes the same id
 * (the whole conversation's, a re-sent conversation's over its new messages, a Tex session's later
 * turns; two sends of one conversation at once once stored the messages both took twice); for any
 * other conversation chunk whose index is not its first turn's position (a window of a message split
 * into several, several turns a chunk), that position too, so the same words said at two places
 * ("ok") are two memories. A whole conversation at one turn a chunk (the default) numbers its chunks
 * as its turns and keeps the ids it always had; a job over some messages wrote `<chunk>@<turn>` before
 * this (such a job retried across the change may store a batch twice).
 */
function positionOf(chunkIndex: number, chunk: Chunk | undefined): string {
  const turnStart = chunk?.turnStart;
  if (turnStart === undefined || turnStart === chunkIndex) return String(chunkIndex);
  if (chunk!.turnEnd === turnStart && chunk!.turnPart === undefined) return String(turnStart);
  return `${chunkIndex}@${turnStart}`;
}
