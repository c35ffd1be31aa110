import type { Client, estypes } from '@elastic/elasticsearch';

type SearchHit<T> = estypes.SearchHit<T>;
type SortResults = estypes.SortResults;
import type { ConversationMessage } from './domain/ingest';
import { clipTurn, type StoredMemory } from './domain/memory';
import { upstreamFailure } from './errors';
import { isPartlyCompleted } from './domain/job';
import { getDocument, retryOnVersionConflict } from './elasticsearch/client';
import { sha256 } from './ids';
import { turnText } from './chunking/chunk-conversation';
import type { Leases } from './leases';
import type { MemoryStore, TurnMemory } from './memories';

/** A message's identity within its conversation: position + speaker + text, so an edit counts as new. */
export const messageHash = (message: ConversationMessage, position: number) =>
  sha256('turn', position, message.role, message.name ?? '', message.content, (message.imageUrls ?? []).join(' ')).slice(0, 32);

/** A stored memory drawn from turns that are no longer in the conversation as last sent. */
export interface SupersededMemory {
  index: string;
  id: string;
  seqNo: number;
  primaryTerm: number;
  turnStart: number;
  turnEnd: number;
  /** Its words and where it sits, for its neighbours' contexts (refreshContexts). */
  memory: TurnMemory;
}

/** What a re-sent conversation changes against what is stored. */
export interface ConversationUpdate {
  /** Positions to ingest: new or edited messages, and unchanged ones that shared a memory with a superseded one. */
  ingest: number[];
  /** Positions whose message was not stored before in this form (new or edited). */
  changed: number[];
  /** Memories to drop once the replacing job is started: drawn from edited or removed messages. */
  superseded: SupersededMemory[];
  /** Some stored message was edited or removed: the record must be rewritten even if nothing is ingested. */
  stale: boolean;
  /** Per position, the job that ingested the message as stored ('' for none or unknown), for the new record. */
  jobOf: string[];
  /** Jobs that ended failed or cancelled: their messages are ingested again, and what they stored is dropped. */
  failedJobs: string[];
  /** The conversation's container tags or metadata differ from what its stored memories carry. */
  attributesChanged: boolean;
  /** Some earlier job of the conversation is still running: it writes the attributes it was started with. */
  jobsOpen: boolean;
}

/** What a conversation's memories carry besides their text: its container tags and metadata. */
export interface ConversationAttributes {
  containerTags?: string[];
  metadata?: Record<string, unknown>;
}

const attributesHash = ({ containerTags, metadata }: ConversationAttributes) =>
  sha256('attributes', JSON.stringify([...(containerTags ?? [])].sort()), JSON.stringify(Object.entries(metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))).slice(0, 32);

// A memory search page; far more than one conversation's edited turns ever yield.
const PAGE = 1000;

/**
 * Ingest-or-update for conversations (supermemory's /v4/conversations): the messages sent are the
 * conversation. The source record keeps one hash per position; on a re-send, new messages are
 * ingested, an edited message's memories are replaced, a removed message's memories are dropped, and
 * unchanged messages are left alone — unless a dropped memory also spoke for them (several turns per
 * chunk), in which case they are ingested again with the edit so nothing they said is lost.
 */
export class ConversationLedger {
  constructor(
    private readonly es: Client,
    private readonly sourcesIndex: string,
    private readonly memoriesIndex: string,
    private readonly jobsIndex: string,
    /** Where sends of one conversation take turns (across API processes). */
    private readonly leases: Leases,
    /** Where neighbouring turns' contexts are rewritten (MemoryStore); without it they are left as they were. */
    private readonly contexts?: Pick<MemoryStore, 'replaceInNeighbours'>,
  ) {}

  /** Runs `send` once no other send of the conversation is being planned, started or recorded. */
  oneAtATime<T>(tenant: string, sourceId: string, send: () => Promise<T>): Promise<T> {
    return this.leases.holding(tenant, `conversation-send:${sourceId}`, send);
  }

  /**
   * A turn is matched and embedded with its neighbours' words (their `context`): the old words of an
   * edited or removed message leave its neighbours' contexts, and an edited message's new text takes
   * their place — else search would still find a neighbour by what the message no longer says. Done
   * before the superseded memories are dropped, while they can still be read.
   */
  async refreshContexts(tenant: string, superseded: SupersededMemory[], messages: ConversationMessage[]): Promise<void> {
    if (!this.contexts) return;
    // A turn of its own whose words changed: re-read under a new session date, the same words change nothing.
    const turns = superseded.flatMap(({ memory, turnStart, turnEnd }) => {
      const message = messages[turnStart];
      const replacement = message ? turnText(message) : undefined;
      return turnStart === turnEnd && (replacement === undefined || clipTurn(replacement) !== clipTurn(memory.text)) ? [{ memory, replacement }] : [];
    });
    if (turns.length > 0) await this.contexts.replaceInNeighbours(tenant, turns);
  }

  async plan(tenant: string, sourceId: string, hashes: string[], attributes: ConversationAttributes): Promise<ConversationUpdate> {
    const { turns: recorded, attributes: storedAttributes, unrecorded } = await this.known(tenant, sourceId);
    // A message is stored only once the job that took it has succeeded: one whose job failed or was
    // cancelled counts as not sent yet, so the client's re-send ingests it instead of answering unchanged.
    const { failedJobs, jobsOpen } = await this.jobStates(tenant, new Set(recorded.values()));
    const known = new Map([...recorded].filter(([, jobId]) => !failedJobs.includes(jobId)));
    const sent = new Set(hashes);
    const changed = hashes.flatMap((hash, position) => (known.has(hash) ? [] : [position]));
    // Hashes carry their position: a stored hash not sent again is an edited or removed message.
    // Only appended (or no) messages — the common re-send — need no look at the stored memories.
    // A source stored with no hashes (a conversation sent before it was kept this way) may hold
    // memories of any of its messages: all are looked at, and replaced.
    const editedOrRemoved = unrecorded || [...known.keys()].some((hash) => !sent.has(hash));
    const superseded = editedOrRemoved ? await this.memoriesOf(tenant, sourceId, changed, hashes.length) : [];
    const ingest = new Set(changed);
    for (const memory of superseded) {
      for (let position = memory.turnStart; position <= memory.turnEnd && position < hashes.length; position++) ingest.add(position);
    }
    const jobOf = hashes.map((hash) => known.get(hash) ?? '');
    // A record from before attribute hashes were kept counts as changed: its memories are rewritten once.
    const attributesChanged = known.size > 0 && storedAttributes !== attributesHash(attributes);
    return { ingest: [...ingest].sort((a, b) => a - b), changed, superseded, stale: editedOrRemoved || failedJobs.length > 0 || attributesChanged, jobOf, failedJobs, attributesChanged, jobsOpen };
  }

  /**
   * Gives the conversation's stored memories its current container tags and metadata (an update that
   * changes only those has no job to carry them). Each memory is rewritten only if unchanged since it
   * was read; one rewritten meanwhile (a job re-indexing it with the new values) is left alone.
   */
  async applyAttributes(tenant: string, sourceId: string, { containerTags, metadata }: ConversationAttributes): Promise<number> {
    let rewritten = 0;
    const pages = this.pages<{ scope?: Record<string, unknown>; metadata?: Record<string, unknown> }>({ bool: { filter: this.ofSource(tenant, sourceId) } }, true);
    for await (const hits of pages) {
      const response = await this.es.bulk({
        refresh: 'wait_for',
        operations: hits.flatMap((hit) => {
          const { container_tags: _tags, ...scope } = hit._source?.scope ?? {};
          const { metadata: _metadata, ...rest } = hit._source ?? {};
          const document = { ...rest, scope: { ...scope, ...(containerTags?.length ? { container_tags: containerTags } : {}) }, ...(metadata ? { metadata } : {}) };
          return [{ index: { _index: hit._index, _id: hit._id!, if_seq_no: hit._seq_no!, if_primary_term: hit._primary_term! } }, document];
        }),
      });
      const failed = response.items.filter((item) => item.index?.error && item.index.status !== 409);
      if (failed.length) throw upstreamFailure(`could not update the conversation's memories: ${failed[0]!.index!.error!.reason}`);
      rewritten += response.items.filter((item) => !item.index?.error).length;
    }
    return rewritten;
  }

  /**
   * Drops what failed jobs of the conversation stored before failing (a batch may have been indexed
   * before another failed): their messages are being ingested again, in chunks of their own.
   */
  async dropFailed(tenant: string, sourceId: string, failedJobs: string[]): Promise<number> {
    if (failedJobs.length === 0) return 0;
    // Search, then delete by id (the node may run without the reindex module's delete-by-query).
    let dropped = 0;
    for await (const hits of this.pages({ bool: { filter: [...this.ofSource(tenant, sourceId), { terms: { 'provenance.job_id': failedJobs } }] } }, false)) {
      const response = await this.es.bulk({ refresh: 'wait_for', operations: hits.map((hit) => ({ delete: { _index: hit._index, _id: hit._id! } })) });
      const failed = response.items.filter((item) => item.delete?.error && item.delete.status !== 404);
      if (failed.length) throw upstreamFailure(`could not drop a failed job's memories: ${failed[0]!.delete!.error!.reason}`);
      dropped += response.items.filter((item) => item.delete?.result === 'deleted').length;
    }
    return dropped;
  }

  /**
   * Of these jobs, the ones whose stored summary says failed or cancelled, or completed with part of
   * the content left out; and whether any is still running (no summary yet).
   */
  private async jobStates(tenant: string, jobIds: Set<string>): Promise<{ failedJobs: string[]; jobsOpen: boolean }> {
    const ids = [...jobIds].filter(Boolean);
    if (ids.length === 0) return { failedJobs: [], jobsOpen: false };
    const { docs } = await this.es.mget<{ status?: string; errors?: unknown[] }>({
      index: this.jobsIndex,
      ids: ids.map((jobId) => `${tenant}:${jobId}`),
      _source_includes: ['status', 'errors'],
    });
    const incomplete = (summary: { status?: string; errors?: unknown[] } | undefined) =>
      ['failed', 'cancelled'].includes(summary?.status ?? '') || isPartlyCompleted(summary);
    return {
      failedJobs: docs.flatMap((doc, i) => ('found' in doc && doc.found && incomplete(doc._source) ? [ids[i]!] : [])),
      jobsOpen: docs.some((doc) => !('found' in doc && doc.found)),
    };
  }

  /**
   * Drops superseded memories, each only if unchanged since it was found: a replacing job that rewrote
   * the same id (same position and text) in the meantime keeps its memory.
   */
  async dropSuperseded(superseded: SupersededMemory[]): Promise<number> {
    if (superseded.length === 0) return 0;
    const response = await this.es.bulk({
      refresh: 'wait_for',
      operations: superseded.map((memory) => ({ delete: { _index: memory.index, _id: memory.id, if_seq_no: memory.seqNo, if_primary_term: memory.primaryTerm } })),
    });
    const failed = response.items.filter((item) => item.delete?.error && item.delete.status !== 409 && item.delete.status !== 404);
    if (failed.length) throw upstreamFailure(`could not drop superseded memories: ${failed[0]!.delete!.error!.reason}`);
    return response.items.filter((item) => item.delete?.result === 'deleted').length;
  }

  /**
   * Replaces the stored hashes with the conversation as sent, each with the job that ingested it
   * (created if absent), retrying on concurrent writers.
   */
  async record(
    tenant: string,
    sourceId: string,
    fields: { kind: string; format: string; documentType: string; documentId: string; scope: Record<string, unknown>; jobId?: string; acceptedAt: string },
    hashes: string[],
    turnJobs: string[],
    attributes: ConversationAttributes,
    options: { attributesSettled: boolean } = { attributesSettled: true },
  ): Promise<void> {
    // Unsettled (new attributes while an earlier job still runs with the old ones): no hash is kept,
    // so the next re-send applies the attributes again, over whatever that job wrote.
    const attributes_hash = options.attributesSettled ? attributesHash(attributes) : 'unsettled';
    // Six tries: another send of the conversation may write the record in between.
    await retryOnVersionConflict(6, async () => {
      const record = await getDocument<{ job_ids?: string[]; accepted_at?: string }>(this.es, { index: this.sourcesIndex, id: sourceId, _source_includes: ['job_ids', 'accepted_at'] });
      const now = new Date().toISOString();
      const jobs = fields.jobId ? { last_job_id: fields.jobId } : {};
      // What a listing of sources filters and sorts by, as any source's record has it: the latest send's
      // classification and scope, and when the conversation was first sent (records written before
      // these fields get them at their next send).
      const described = { kind: fields.kind, format: fields.format, document_type: fields.documentType, document_id: fields.documentId, scope: fields.scope };
      if (!record) {
        await this.es.index({
          index: this.sourcesIndex,
          id: sourceId,
          op_type: 'create',
          document: {
            id: sourceId,
            tenant,
            ...described,
            accepted_at: fields.acceptedAt,
            turn_hashes: hashes,
            turn_jobs: turnJobs,
            turn_count: hashes.length,
            attributes_hash,
            ...jobs,
            job_ids: fields.jobId ? [fields.jobId] : [],
            created_at: now,
            updated_at: now,
          },
        });
      } else {
        const jobIds = [...new Set([...(record.source.job_ids ?? []), ...(fields.jobId ? [fields.jobId] : [])])];
        await this.es.update({
          index: this.sourcesIndex,
          id: sourceId,
          doc: {
            ...described,
            ...(record.source.accepted_at ? {} : { accepted_at: fields.acceptedAt }),
            turn_hashes: hashes,
            turn_jobs: turnJobs,
            turn_count: hashes.length,
            attributes_hash,
            ...jobs,
            job_ids: jobIds,
            updated_at: now,
          },
          if_seq_no: record.seqNo,
          if_primary_term: record.primaryTerm,
        });
      }
    });
  }

  /** Stored hashes, each with the job that ingested it ('' when the record predates turn_jobs), and the attributes' hash. */
  private async known(tenant: string, sourceId: string): Promise<{ turns: Map<string, string>; attributes?: string; unrecorded: boolean }> {
    const record = await getDocument<{ tenant: string; turn_hashes?: string[]; turn_jobs?: string[]; attributes_hash?: string }>(
      this.es,
      { index: this.sourcesIndex, id: sourceId, _source_includes: ['tenant', 'turn_hashes', 'turn_jobs', 'attributes_hash'] },
      tenant,
    );
    if (!record) return { turns: new Map(), unrecorded: false };
    const jobs = record.source.turn_jobs ?? [];
    return {
      unrecorded: !record.source.turn_hashes,
      turns: new Map((record.source.turn_hashes ?? []).map((hash, position) => [hash, jobs[position] ?? ''])),
      attributes: record.source.attributes_hash,
    };
  }

  /** Memories of the conversation drawn from any of these positions or from beyond its new end (removed messages). */
  private async memoriesOf(tenant: string, sourceId: string, positions: number[], length: number): Promise<SupersededMemory[]> {
    // Runs of consecutive positions as one clause each: a long appended tail stays one clause.
    const covers: object[] = runsOf(positions).map(([first, last]) => ({
      bool: { filter: [{ range: { 'provenance.turn_start': { lte: last } } }, { range: { 'provenance.turn_end': { gte: first } } }] },
    }));
    covers.push({ range: { 'provenance.turn_end': { gte: length } } });
    const found: SupersededMemory[] = [];
    const pages = this.pages<Partial<Pick<StoredMemory, 'text'>> & { provenance?: Partial<TurnMemory['provenance']> }>(
      // A memory edited through the API (updated_at set) is never dropped: its edit stands, as a
      // replaced version's does, and a re-read that writes its id again leaves it as edited.
      { bool: { filter: this.ofSource(tenant, sourceId), should: covers, minimum_should_match: 1, must_not: [{ exists: { field: 'updated_at' } }] } },
      ['text', 'provenance.source_id', 'provenance.job_id', 'provenance.turn_start', 'provenance.turn_end'],
    );
    for await (const hits of pages) {
      for (const hit of hits) {
        const provenance = hit._source?.provenance ?? {};
        found.push({
          index: hit._index,
          id: hit._id!,
          seqNo: hit._seq_no!,
          primaryTerm: hit._primary_term!,
          turnStart: provenance.turn_start ?? 0,
          turnEnd: provenance.turn_end ?? provenance.turn_start ?? 0,
          memory: {
            id: hit._id!,
            text: hit._source?.text ?? '',
            provenance: { source_id: provenance.source_id ?? sourceId, job_id: provenance.job_id ?? '', turn_start: provenance.turn_start, turn_end: provenance.turn_end },
          },
        });
      }
    }
    return found;
  }

  /**
   * The conversation's memories: of its source and drawn from a conversation. A document sent under
   * the same id (its source key is the same `doc:<id>`) keeps its own memories out of every rewrite.
   */
  private ofSource(tenant: string, sourceId: string): object[] {
    return [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }, { term: { 'provenance.format': 'CONVERSATION' } }];
  }

  /** The memories a query matches, a page at a time (in id order, with their versions for conditional writes). */
  private async *pages<T>(query: object, source: string[] | boolean): AsyncGenerator<SearchHit<T>[]> {
    let after: SortResults | undefined;
    for (;;) {
      const { hits } = await this.es.search<T>({ index: this.memoriesIndex, size: PAGE, seq_no_primary_term: true, _source: source, sort: [{ id: 'asc' }], search_after: after, query });
      if (hits.hits.length > 0) yield hits.hits;
      if (hits.hits.length < PAGE) return;
      after = hits.hits[hits.hits.length - 1]!.sort;
    }
  }
}

function runsOf(sorted: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const position of sorted) {
    const last = runs[runs.length - 1];
    if (last && position === last[1] + 1) last[1] = position;
    else runs.push([position, position]);
  }
  return runs;
}
