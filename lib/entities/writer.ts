import type { Client } from '@elastic/elasticsearch';
import type { PromptRefresh } from '../elasticsearch/refresh';
import { upstreamFailure } from '../errors';
import { mergedEntity, type EntityDoc, type NormalisedMention } from './entity';

/** A stored entity with the version an optimistic write must match. */
export interface Stored {
  doc: EntityDoc;
  /** The concrete index behind the alias: versions only compare within one (a reindex swaps it). */
  version: { index: string; seqNo: number; primaryTerm: number };
}

/** One mention folded into an entity, with the source and time it came with. */
interface Fold {
  sourceId: string;
  mention: NormalisedMention;
  now: string;
}

const MAX_CONFLICT_ROUNDS = 20;
/** Versions this process wrote last, kept as bases for its next writes (enough for a busy tenant's hot entities). */
const KEPT_VERSIONS = 5_000;

/**
 * One batch's change to one entity: the version it started from (none for a new entity) and the
 * mentions folded in. `doc` is the entity as the batch sees it, and as it was written once the writer
 * is done with it.
 */
export class EntityChange {
  changed = false;
  readonly folds: Fold[] = [];
  private constructor(
    readonly base: Stored | undefined,
    public doc: EntityDoc,
  ) {}

  static of(stored: Stored): EntityChange {
    return new EntityChange(stored, stored.doc);
  }

  /** A new entity, made by its first mention. */
  static create(doc: EntityDoc, fold: Fold): EntityChange {
    const change = new EntityChange(undefined, doc);
    change.folds.push(fold);
    change.changed = true;
    return change;
  }

  get id(): string {
    return this.doc.id;
  }

  fold(sourceId: string, mention: NormalisedMention, now: string): void {
    this.folds.push({ sourceId, mention, now });
    const next = mergedEntity(this.doc, sourceId, mention, now);
    if (next) {
      this.doc = next;
      this.changed = true;
    }
  }
}

/** Every change to one entity waiting in a write: the newest known version and all folds on top. */
interface Combined {
  id: string;
  base?: Stored;
  /** The entity as a first mention made it, when no stored version is known. */
  created?: EntityDoc;
  folds: Fold[];
  changes: EntityChange[];
  doc: EntityDoc;
}

/**
 * Writes entity changes with group commit. Hot entities ("Lisbon" in every document of a tenant) are
 * changed by most concurrent batches at once; written one batch at a time with optimistic concurrency
 * they would conflict and retry in a queue. Instead each process has one bulk write in flight: the
 * changes that arrive meanwhile wait for the next one, where all changes to an entity become one
 * write. Each write starts from the newest version known here (the one this process wrote last, when
 * newer than what the batch read from the same concrete index) and is checked with if_seq_no, so other processes' writes are never
 * lost: an entity that changed elsewhere is read again and its folds redone.
 */
export class EntityWriter {
  private queue: { changes: EntityChange[]; settle: (error?: unknown) => void }[] = [];
  private flushing = false;
  private written = new Map<string, Stored>();

  constructor(
    private readonly es: Client,
    private readonly index: string,
    private readonly promptRefresh?: PromptRefresh,
  ) {}

  /** Resolves once every changed entity is written and searchable. */
  write(changes: EntityChange[]): Promise<void> {
    const changed = changes.filter((change) => change.changed);
    if (changed.length === 0) return Promise.resolve();
    const written = () =>
      new Promise<void>((resolve, reject) => {
        this.queue.push({ changes: changed, settle: (error) => (error ? reject(error) : resolve()) });
        void this.drain();
      });
    // Queued behind the write in flight or in it, the caller waits for a refresh either way.
    return this.promptRefresh ? this.promptRefresh.waitingOn(written) : written();
  }

  private async drain(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0);
        try {
          await this.flush(group.flatMap(({ changes }) => changes));
          for (const { settle } of group) settle();
        } catch (error) {
          for (const { settle } of group) settle(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async flush(changes: EntityChange[]): Promise<void> {
    let pending = this.combine(changes).filter((combined) => this.refold(combined));
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_CONFLICT_ROUNDS) throw new Error(`entities kept changing under ${MAX_CONFLICT_ROUNDS} rounds of concurrent writers; the activity will retry`);
      // Searchable when the write returns: other jobs' name lookups (searches) and entity listings must
      // see the batch. Waiting for the next scheduled refresh rather than forcing one: a forced refresh
      // per write made a tiny segment (and vector graph) per batch for Elasticsearch to merge again.
      // Unless nothing else at work in this process would share it (PromptRefresh).
      const bulk = () =>
        this.es.bulk({
          index: this.index,
          refresh: 'wait_for',
          operations: pending.flatMap((combined) => [
            combined.base
              ? { index: { _id: combined.id, if_seq_no: combined.base.version.seqNo, if_primary_term: combined.base.version.primaryTerm } }
              : { create: { _id: combined.id } },
            combined.doc,
          ]),
        });
      const response = await (this.promptRefresh ? this.promptRefresh.refreshing(this.index, bulk) : bulk());
      const conflicted: Combined[] = [];
      response.items.forEach((item, i) => {
        const result = (item.index ?? item.create)!;
        const combined = pending[i]!;
        if (result.status === 409) conflicted.push(combined);
        else if (result.error) throw upstreamFailure(`Elasticsearch rejected entity ${combined.id}: ${result.error.type}: ${result.error.reason}`);
        else this.remember({ doc: combined.doc, version: { index: result._index, seqNo: result._seq_no!, primaryTerm: result._primary_term! } });
      });
      if (conflicted.length === 0) return;
      const latest = await readEntities(this.es, this.index, conflicted.map(({ id }) => id));
      for (const combined of conflicted) {
        const stored = latest.get(combined.id);
        // Deleted between the batch's read and this write: resolving again from the start is the safe answer.
        if (!stored) throw upstreamFailure(`entity ${combined.id} disappeared while it was being resolved; the activity will retry`);
        this.remember(stored);
        combined.base = stored;
      }
      pending = conflicted.filter((combined) => this.refold(combined));
    }
  }

  /** Changes grouped by entity, each group on the newest version known here. */
  private combine(changes: EntityChange[]): Combined[] {
    const byId = new Map<string, Combined>();
    for (const change of changes) {
      const combined = byId.get(change.id) ?? { id: change.id, folds: [], changes: [], doc: change.doc };
      combined.base = newer(combined.base, change.base);
      if (!change.base) combined.created ??= change.doc;
      combined.folds.push(...change.folds);
      combined.changes.push(change);
      byId.set(change.id, combined);
    }
    // A new entity is not taken from here: its creation may have gone to an index a reindex has since replaced.
    for (const combined of byId.values()) if (combined.base) combined.base = newer(combined.base, this.written.get(combined.id));
    return [...byId.values()];
  }

  /** Redoes the group's folds on its base; answers whether that changes anything to write. */
  private refold(combined: Combined): boolean {
    let doc = combined.base?.doc ?? combined.created!;
    let changed = !combined.base;
    for (const { sourceId, mention, now } of combined.folds) {
      const next = mergedEntity(doc, sourceId, mention, now);
      if (next) {
        doc = next;
        changed = true;
      }
    }
    combined.doc = doc;
    for (const change of combined.changes) change.doc = doc;
    return changed;
  }

  private remember(stored: Stored): void {
    this.written.delete(stored.doc.id);
    this.written.set(stored.doc.id, stored);
    if (this.written.size > KEPT_VERSIONS) this.written.delete(this.written.keys().next().value!);
  }
}

/** Entities by id, read in real time (a write not yet refreshed is seen), with their versions. */
export async function readEntities(es: Client, index: string, ids: string[]): Promise<Map<string, Stored>> {
  const stored = new Map<string, Stored>();
  if (ids.length === 0) return stored;
  const { docs } = await es.mget<EntityDoc>({ index, ids: [...new Set(ids)] });
  for (const doc of docs) {
    if ('found' in doc && doc.found && doc._source) {
      stored.set(doc._id, { doc: doc._source, version: { index: doc._index, seqNo: doc._seq_no!, primaryTerm: doc._primary_term! } });
    }
  }
  return stored;
}

function newer(a: Stored | undefined, b: Stored | undefined): Stored | undefined {
  if (!a || !b) return a ?? b;
  const [x, y] = [a.version, b.version];
  if (x.index !== y.index) return a;
  return y.primaryTerm > x.primaryTerm || (y.primaryTerm === x.primaryTerm && y.seqNo > x.seqNo) ? b : a;
}
