import type { Client } from '@elastic/elasticsearch';
import { z } from 'zod';
import { clipTurn, embeddingText, publicMemory, sayingKey, type Memory, type Provenance, type StoredMemory } from './domain/memory';
import { IngestMode, Metadata } from './domain/ingest';
import { getDocument, isVersionConflict, retryOnVersionConflict } from './elasticsearch/client';
import type { EmbeddingMatch } from './elasticsearch/embedding-match';
import type { IndexNames } from './elasticsearch/indices';
import { badInput, conflict, notFound } from './errors';
import type { Embedder } from './models/embedder';
import { stemmedText } from './search/analysis';
import { countTokens } from './chunking/tokens';
import { forgetUnnamedInEntities } from './entities/forget-sources';
import { EntityResolver, entityRefsOf } from './entities/resolver';
import { EntitySplits } from './entities/splits';
import { mergeText, MergeStrategy } from './memory-merge';
import type { Extractor } from './models/extractor';
import { filterClauses } from './search/filters';
import type { SearchFilters } from './search/plan';

export const MemoryUpdate = z
  .object({
    content: z.string().min(1).max(100_000).optional(),
    merge_strategy: MergeStrategy.default('replace'),
    confidence: z.number().min(0).max(1).optional(),
    /** Merged into the existing metadata, key by key. */
    metadata: Metadata.optional(),
  })
  .refine((update) => update.content !== undefined || update.confidence !== undefined || update.metadata !== undefined, {
    message: 'nothing to update: give content, confidence or metadata',
  });
export type MemoryUpdate = z.infer<typeof MemoryUpdate>;

/**
 * An edit or a delete answers once search shows it, and refreshes the index itself rather than wait
 * for the next scheduled refresh: one memory, changed by a person or an agent now and then, not a
 * stream of writes to batch (waiting for the scheduled one, an edit or delete of a conversation turn
 * took 1–2 s; 35–65 ms this way).
 */
const EDIT_REFRESH = true;

/** What rewriting a turn's neighbours reads of the turn's memory: its words and where it sits. */
export type TurnMemory = Pick<StoredMemory, 'id' | 'text'> & { provenance: Pick<Provenance, 'source_id' | 'job_id' | 'turn_start' | 'turn_end'> };

/** The most memories one turn's are read as (ofTurn): far more than a message's windows and extractions. */
const TURN_MEMORIES = 1_000;

/** How many times an edit is applied to a memory other edits keep changing before it answers 409. */
const UPDATE_ATTEMPTS = 5;

const entityIdsOf = (memory: StoredMemory) => [...new Set((memory.entities ?? []).map((entity) => entity.id))];

/** Memories and entities by id, always within one tenant: another tenant's id answers not found. */
export class MemoryStore {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
    private readonly embedder?: Embedder,
    private readonly embeddingMatch?: EmbeddingMatch,
    /** When set, an edited text's type, dates and entities are read again with them (rederive). */
    private readonly extractors?: Record<IngestMode, Extractor>,
  ) {}

  async get(tenant: string, id: string): Promise<Memory> {
    return publicMemory((await this.getStored(tenant, id)).memory);
  }

  /**
   * Edits read the memory, compute the new one and write it only if nothing changed it meanwhile.
   * Edits of one memory at once (two appends) each apply to what the other left: one that finds the
   * memory changed reads it again and applies its own change to the newer text, a few times before it
   * answers 409. A memory deleted meanwhile answers 404. The metadata sent is merged into the
   * memory's key by key, or with `replaceMetadata` takes its place (supermemory's new version carries
   * the metadata sent, not the earlier one's).
   */
  async update(tenant: string, id: string, update: MemoryUpdate, { replaceMetadata = false } = {}): Promise<Memory> {
    try {
      return await retryOnVersionConflict(UPDATE_ATTEMPTS, () => this.updateOnce(tenant, id, update, replaceMetadata));
    } catch (error) {
      if (isVersionConflict(error)) throw conflict(`memory ${id} kept changing while it was being updated; retry`);
      throw error;
    }
  }

  /** One read-change-write of an edit; the write fails with a version conflict when the memory changed meanwhile. */
  private async updateOnce(tenant: string, id: string, update: MemoryUpdate, replaceMetadata: boolean): Promise<Memory> {
    const { memory, seqNo, primaryTerm } = await this.getStored(tenant, id);
    const next: StoredMemory = { ...memory, updated_at: new Date().toISOString() };
    if (update.content !== undefined) {
      next.text = mergeText(memory.text, update.content, update.merge_strategy);
      next.stems = stemmedText(next.text);
      if (next.text !== memory.text) {
        // What the memory is, names and dates, and its vector must describe the text it now holds.
        await this.reembed([next], { fresh: true });
        Object.assign(next, await this.rederive(tenant, memory, next.text));
      }
    }
    if (update.confidence !== undefined) next.confidence = update.confidence;
    if (update.metadata) next.metadata = replaceMetadata ? update.metadata : { ...memory.metadata, ...update.metadata };
    const undo = next.text !== memory.text ? await this.refreshNeighbours(tenant, memory, next.text) : undefined;
    try {
      await this.es.index({ index: this.indices.memories, id, document: next, if_seq_no: seqNo, if_primary_term: primaryTerm, refresh: EDIT_REFRESH });
    } catch (error) {
      await undo?.().catch(() => undefined);
      if (isVersionConflict(error)) throw error;
      const status = (error as { statusCode?: number }).statusCode;
      // The merged document refused by the mapping (e.g. merged metadata nested too deep): the update's fault.
      if (status === 400) throw badInput(`the updated memory cannot be stored: ${(error as { message?: string }).message ?? 'refused by Elasticsearch'}`.slice(0, 500));
      throw error;
    }
    // Entities read again from the new text: one merged away meanwhile is followed, as after a job's write.
    if (next.entities !== memory.entities) await new EntitySplits(this.es, this.indices).followMerges(tenant, entityIdsOf(next));
    const stillNamed = new Set(entityIdsOf(next));
    await forgetUnnamedInEntities(this.es, this.indices, tenant, memory.provenance.source_id, entityIdsOf(memory).filter((entity) => !stillNamed.has(entity)));
    return publicMemory(next);
  }

  /**
   * Deletes a memory for good. A tombstone under its id, written first, keeps the same content
   * ingested again (a re-send, a retried job, a re-extraction: they write the same ids) from writing
   * it back (activities/index-memories.ts); a delete that fails takes its tombstone away again.
   */
  async delete(tenant: string, id: string): Promise<void> {
    const { memory } = await this.getStored(tenant, id);
    await this.tombstone(tenant, id, memory.provenance.source_id, memory.scope.user_id);
    const dropTombstone = () => this.es.delete({ index: this.indices.tombstones, id }, { ignore: [404] }).catch(() => undefined);
    let undo: () => Promise<void> = async () => undefined;
    try {
      undo = await this.refreshNeighbours(tenant, memory, undefined);
      await this.es.delete({ index: this.indices.memories, id, refresh: EDIT_REFRESH }, { ignore: [404] });
    } catch (error) {
      await undo().catch(() => undefined);
      await dropTombstone();
      throw error;
    }
    await forgetUnnamedInEntities(this.es, this.indices, tenant, memory.provenance.source_id, entityIdsOf(memory));
  }

  /**
   * A tombstone under a memory id, which keeps that memory from being written (again) by anything
   * ingested later; it goes with its source (lib/sources.ts). delete() keeps one for the memory it
   * deletes; one kept for an id no memory holds keeps out what would be stored under it (a forgotten
   * Tex turn's fragment, when the turn is sent again).
   */
  async tombstone(tenant: string, id: string, sourceId: string, userId: string | undefined): Promise<void> {
    const document = { tenant, source_id: sourceId, ...(userId === undefined ? {} : { user_id: userId }), deleted_at: new Date().toISOString() };
    await this.es.index({ index: this.indices.tombstones, id, document });
  }

  /** The tenant's tombstone under this id (the memory was deleted, or kept out), with the user whose memory it was. */
  async tombstoneOf(tenant: string, id: string): Promise<{ user_id?: string } | undefined> {
    return (await getDocument<{ tenant: string; user_id?: string }>(this.es, { index: this.indices.tombstones, id }, tenant))?.source;
  }

  /**
   * The memories of one conversation turn that the filters match: those whose provenance names it
   * (`turn_ids`: a Tex turn's active fragment and what its enrichment extracted; a memory of several
   * turns, with CONVERSATION_TURNS_PER_CHUNK above 1, names each), stored through `surface` when given,
   * with the source and job that wrote them.
   */
  async ofTurn(tenant: string, turnId: string, within: { filters?: SearchFilters; surface?: string } = {}): Promise<{ id: string; sourceId: string; jobId?: string; userId?: string }[]> {
    const surface = within.surface ? [{ term: { 'provenance.surface': within.surface } }] : [];
    const { hits } = await this.es.search<Pick<StoredMemory, 'provenance' | 'scope'>>({
      index: this.indices.memories,
      // A turn is one message: its memories are its windows (a long message is split) and what was extracted from them.
      size: TURN_MEMORIES,
      query: { bool: { filter: [...filterClauses(tenant, within.filters), ...surface, { term: { 'provenance.turn_ids': turnId } }] } },
      _source: ['provenance.source_id', 'provenance.job_id', 'scope.user_id'],
    });
    return hits.hits.flatMap((hit) => (hit._id && hit._source ? [{ id: hit._id, sourceId: hit._source.provenance.source_id, jobId: hit._source.provenance.job_id, userId: hit._source.scope?.user_id }] : []));
  }

  /**
   * These memories and every copy of what they say (sayingKey: a Tex turn's fragment and its passive
   * enrichment), by id: what forgetting them must delete for search to no longer find their words.
   */
  async withCopies(tenant: string, memories: Pick<Memory, 'id' | 'text' | 'provenance'>[]): Promise<string[]> {
    const ids = new Set(memories.map((memory) => memory.id));
    const turned = memories.filter((memory) => sayingKey(memory) !== undefined);
    if (turned.length === 0) return [...ids];
    const { hits } = await this.es.search<Pick<StoredMemory, 'text' | 'provenance'>>({
      index: this.indices.memories,
      size: TURN_MEMORIES,
      query: {
        bool: {
          filter: [{ term: { tenant } }],
          should: turned.map(({ provenance }) => ({
            bool: { filter: [{ term: { 'provenance.source_id': provenance.source_id } }, ...provenance.turn_ids!.map((turnId) => ({ term: { 'provenance.turn_ids': turnId } }))] },
          })),
          minimum_should_match: 1,
        },
      },
      _source: ['text', 'provenance.source_id', 'provenance.turn_ids'],
    });
    const said = new Set(turned.map(sayingKey));
    for (const hit of hits.hits) if (hit._id && hit._source && said.has(sayingKey(hit._source))) ids.add(hit._id);
    return [...ids];
  }

  /**
   * Turns of a conversation update that were edited or removed (the conversation ledger's superseded
   * memories of one turn, each with the text that turn now has, none when it was removed): their old
   * words leave the contexts their neighbouring turns hold, and the new text takes their place, as when
   * a turn is edited or deleted here.
   */
  async replaceInNeighbours(tenant: string, turns: { memory: TurnMemory; replacement?: string }[]): Promise<void> {
    // Neighbours that are themselves being replaced are left alone: they are dropped next, and only if
    // unchanged since they were found (a rewrite here would keep them).
    const replaced = new Set(turns.map(({ memory }) => memory.id));
    for (const { memory, replacement } of turns) await this.refreshNeighbours(tenant, memory, replacement, replaced);
  }

  /**
   * An edited text read as ingestion reads a chunk: the extractor of the mode its source was last
   * ingested in (long-range unless the source says otherwise) types it and
   * finds the dates it names (relative ones from the session or document date, else when the memory
   * was stored, and a turn's from when it was said) and the entities it mentions, which are resolved
   * against the tenant's entities as a job's are. Entities and dates the old text named and the new
   * one does not are dropped from the memory. Should the extractor find nothing to remember in the
   * text (a model may), the memory keeps its type and confidence and names no entities or dates.
   */
  private async rederive(tenant: string, memory: StoredMemory, text: string): Promise<Partial<Pick<StoredMemory, 'entities' | 'event_dates' | 'type' | 'confidence'>>> {
    if (!this.extractors) return {};
    const { provenance } = memory;
    const mode = await this.modeOf(provenance.source_id);
    const chunk = { index: provenance.chunk_index, text, tokens: countTokens(text), speakers: provenance.speakers, timestamp: provenance.timestamp };
    const { memories } = await this.extractors[mode].extract([chunk], {
      documentType: provenance.document_type,
      mode,
      referenceDate: provenance.session_date ?? provenance.document_date ?? memory.created_at,
      format: provenance.format,
    });
    const mentions = memories.flatMap((extracted) => extracted.entities);
    // Entity vectors are written like memories': while the index awaits another model, without one.
    // (The edit's reembed has just read both indices' models afresh: the cached answer is current.)
    const vectorsFit = this.embedder && !(await this.embeddingMatch?.mismatchOf('entities', { fresh: false }));
    const resolver = new EntityResolver({ es: this.es, indices: this.indices, embedder: vectorsFit ? this.embedder : undefined });
    const entities = entityRefsOf(mentions, await resolver.resolve(tenant, provenance.source_id, mentions));
    const dates = [...new Set(memories.flatMap((extracted) => extracted.eventDates ?? []))];
    const [first] = memories;
    return { entities, event_dates: dates.length ? dates : undefined, ...(first ? { type: first.type, confidence: first.confidence } : {}) };
  }

  /**
   * The extraction mode the source was last ingested in (its record keeps the latest send's); when
   * the record cannot be read, long-range, as before modes were read: the edit itself goes on.
   */
  private async modeOf(sourceId: string): Promise<IngestMode> {
    const record = await getDocument<{ mode?: string | null }>(this.es, { index: this.indices.sources, id: sourceId, _source_includes: ['mode'] }).catch(() => undefined);
    return IngestMode.catch('long-range').parse(record?.source.mode);
  }

  /**
   * New vectors for memories whose text changed. While the index awaits a reindex to another model,
   * a vector from ours would not fit it and the old one no longer fits the text: they go without one,
   * and the reindex embeds them (the caller can't wait).
   */
  private async reembed(docs: StoredMemory[], { fresh }: { fresh: boolean }): Promise<void> {
    if (!this.embedder || docs.length === 0) return;
    if (await this.embeddingMatch?.mismatchOf('memories', { fresh })) {
      for (const doc of docs) {
        delete doc.embedding;
        delete doc.embedding_model;
      }
      return;
    }
    const vectors = await this.embedder.embed(docs.map(embeddingText), { urgent: true });
    docs.forEach((doc, i) => Object.assign(doc, { embedding: vectors[i], embedding_model: this.embedder!.model }));
  }

  /**
   * A conversation turn's neighbours hold its text as their context (matched by search, embedded with
   * them): when the turn is replaced or deleted, they hold the new text or none, so deleted words are
   * not found through a neighbour. Neighbours are the turns just before and after it in its source and
   * job (contexts are built within a job); the turn is the end of the one before's context and the
   * start of the one after's, and only that half is rewritten. Done before the change itself, so a
   * failed refresh leaves both as they were (the caller's retry does it all again), and the returned
   * undo puts the neighbours back when the change then fails; a neighbour changed meanwhile keeps its
   * own change.
   */
  private async refreshNeighbours(tenant: string, memory: TurnMemory, replacement: string | undefined, leave?: Set<string>): Promise<() => Promise<void>> {
    const { source_id: sourceId, job_id: jobId, turn_start: start, turn_end: end } = memory.provenance;
    if (!sourceId || !jobId || start === undefined) return async () => undefined;
    const last = end ?? start;
    const { hits } = await this.es.search<StoredMemory>({
      index: this.indices.memories,
      size: 20,
      seq_no_primary_term: true,
      query: {
        bool: {
          // A context is built from the chunks of its own job: a neighbour from another job never held this turn.
          filter: [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }, { term: { 'provenance.job_id': jobId } }],
          should: [{ term: { 'provenance.turn_end': start - 1 } }, { term: { 'provenance.turn_start': last + 1 } }],
          minimum_should_match: 1,
        },
      },
    });
    const old = clipTurn(memory.text);
    const now = replacement === undefined ? '' : clipTurn(replacement);
    const changed: { id: string; seqNo?: number; primaryTerm?: number; doc: StoredMemory }[] = [];
    for (const hit of hits.hits) {
      const neighbour = hit._source!;
      if (!neighbour.context || hit._id === memory.id || leave?.has(hit._id!)) continue;
      const after = neighbour.provenance.turn_start === last + 1;
      // After the turn: its context begins with the turn ("turn\nnext"); before it: ends with it.
      // The turn is a whole part of it: followed (after) or preceded (before) by the line break that
      // joins the two halves, or it is all of it.
      const whole = neighbour.context === old;
      let context: string | undefined;
      if (after && (whole || neighbour.context.startsWith(`${old}\n`))) context = `${now}${neighbour.context.slice(old.length)}`;
      else if (!after && (whole || neighbour.context.endsWith(`\n${old}`))) context = `${neighbour.context.slice(0, neighbour.context.length - old.length)}${now}`;
      else continue;
      context = context.replace(/^\n+|\n+$/g, '') || undefined;
      changed.push({ id: hit._id!, seqNo: hit._seq_no, primaryTerm: hit._primary_term, doc: { ...neighbour, context, context_stems: stemmedText(context) } });
    }
    if (changed.length === 0) return async () => undefined;
    const before = new Map(hits.hits.map((hit) => [hit._id!, hit._source!]));
    await this.reembed(changed.map(({ doc }) => doc), { fresh: false });
    // Not refreshed here: the change of the turn itself comes next, and its refresh shows both.
    const response = await this.es.bulk({
      operations: changed.flatMap(({ id, seqNo, primaryTerm, doc }) => [{ index: { _index: this.indices.memories, _id: id, if_seq_no: seqNo, if_primary_term: primaryTerm } }, doc]),
    });
    const results = response.items.map((item) => item.index!);
    const failed = results.find((result) => result.error && result.status !== 409);
    if (failed) throw new Error(`Elasticsearch refused a neighbour's context: ${failed.error?.type}: ${failed.error?.reason}`);
    // Undoes this, for a change of the turn itself that then fails: neighbours written here get back
    // what they held (unless changed since).
    return async () => {
      const written = results.filter((result) => !result.error);
      if (written.length === 0) return;
      await this.es.bulk({
        refresh: 'wait_for',
        operations: written.flatMap((result) => [
          { index: { _index: this.indices.memories, _id: result._id, if_seq_no: result._seq_no, if_primary_term: result._primary_term } },
          before.get(result._id!)!,
        ]),
      });
    };
  }

  private async getStored(tenant: string, id: string): Promise<{ memory: StoredMemory; seqNo?: number; primaryTerm?: number }> {
    const found = await getDocument<StoredMemory>(this.es, { index: this.indices.memories, id }, tenant);
    if (!found) throw notFound(`memory ${id}`);
    return { memory: found.source, seqNo: found.seqNo, primaryTerm: found.primaryTerm };
  }
}
