import type { Client, estypes } from '@elastic/elasticsearch';
import type { EntityRef } from '../domain/memory';
import { upstreamFailure } from '../errors';
import { entityId } from '../ids';
import type { Embedder } from '../models/embedder';
import { chooseEntity, cosine, matchesNameQuery, nameQuery, settledByAlias, type Candidate } from './candidates';
import { mergedEntity, newEntity, type EntityDoc, type Mention, type NormalisedMention } from './entity';
import { normaliseEntityName } from './names';

export type { EntityDoc, Mention } from './entity';
export { mergedEntity } from './entity';

export interface EntityResolverDeps {
  es: Client;
  /** The entities alias. */
  index: string;
  embedder?: Embedder;
}

const MAX_CONFLICT_RETRIES = 20;

/** A stored entity with the version an optimistic write must match. */
interface Stored {
  doc: EntityDoc;
  version: { seqNo: number; primaryTerm: number };
}

/** A lookup's hit: with its name's cosine similarity when it came from the embedding search. */
type Found = Stored & { score?: number };

/**
 * Mentions → the tenant's entities. A mention resolves, in order, to the entity of its own normalised
 * name, to an entity that already has it as an alias, to the one entity whose name is compatible with
 * it ("Mel" → "Melanie", "Bob" → "Bob Smith") or whose name embeds almost identically, or else to a new
 * entity. Ids derive from tenant + normalised name, so a retried activity or a re-sent job finds what
 * it wrote before instead of writing it again.
 *
 * A batch of mentions costs a fixed handful of requests, not a few per mention: one real-time read of
 * the mentions' own ids, one multi-search by name for the rest, one by embedding for the forms names
 * leave open (only those are embedded), then one bulk write. Mentions of the batch see each other's
 * effects in memory ("Melanie" created first is what a later "Mel" joins). This Elasticsearch has no
 * scripting, so the bulk writes with optimistic concurrency (if_seq_no); entities another writer
 * changed meanwhile are read again, the batch's mentions folded in again, and only they rewritten.
 */
export class EntityResolver {
  constructor(private readonly deps: EntityResolverDeps) {}

  /** Resolves every mention; answers the entity for each normalised name. */
  async resolve(tenant: string, sourceId: string, mentions: Mention[], now = new Date().toISOString()): Promise<Map<string, EntityRef>> {
    const ordered = distinctMentions(mentions);
    if (ordered.length === 0) return new Map();
    const ownId = (mention: NormalisedMention) => entityId(tenant, mention.normalised);

    const stored = await this.read(ordered.map(ownId));
    const unknown = ordered.filter((mention) => !stored.has(ownId(mention)));
    const byName = await this.searchEach(unknown.map((mention) => ({ size: 50, query: nameQuery(tenant, mention.normalised), seq_no_primary_term: true })));
    const open = this.deps.embedder ? unknown.filter((mention, i) => !settledByAlias(byName[i]!.map(({ doc }) => ({ doc })), mention)) : [];
    const vectors = open.length ? await this.deps.embedder!.embed(open.map((mention) => mention.name)) : [];
    open.forEach((mention, i) => (mention.vector = vectors[i]));
    const bySimilarity = await this.searchEach(open.map((mention) => ({
      size: 10,
      knn: { field: 'embedding', query_vector: mention.vector!, k: 10, num_candidates: 100, filter: [{ term: { tenant } }] },
      seq_no_primary_term: true,
    })));
    const found = new Map<NormalisedMention, Found[]>(unknown.map((mention, i) => [mention, byName[i]!]));
    open.forEach((mention, i) => found.get(mention)!.push(...bySimilarity[i]!));

    const changes = new Map<string, EntityChange>();
    const chosen = new Map<string, string>();
    for (const mention of ordered) {
      const id = ownId(mention);
      let change = changes.get(id);
      if (!change && stored.has(id)) change = new EntityChange(stored.get(id)!);
      if (!change) {
        const existing = chooseEntity(this.candidates(found.get(mention) ?? [], changes, mention), mention);
        if (existing) change = changes.get(existing) ?? new EntityChange(found.get(mention)!.find(({ doc }) => doc.id === existing)!);
      }
      if (change) change.fold(sourceId, mention, now);
      else change = EntityChange.create(newEntity(tenant, sourceId, mention, now, this.deps.embedder?.model), mention);
      changes.set(change.id, change);
      chosen.set(mention.normalised, change.id);
    }
    await this.write([...changes.values()], sourceId, now);

    return new Map(ordered.map((mention) => {
      const id = chosen.get(mention.normalised)!;
      return [mention.normalised, { id, name: mention.name, type: changes.get(id)!.doc.type }];
    }));
  }

  /**
   * What Elasticsearch found for a mention, seen through this batch's own changes (newer than what
   * the index shows), plus the batch's entities the index cannot see yet that the lookups would find.
   */
  private candidates(found: Found[], changes: Map<string, EntityChange>, mention: NormalisedMention): Candidate[] {
    const candidates = new Map<string, Candidate>();
    for (const { doc, score } of found) {
      const current = changes.get(doc.id)?.doc ?? doc;
      candidates.set(doc.id, { doc: current, score: score ?? candidates.get(doc.id)?.score });
    }
    for (const change of changes.values()) {
      const { doc } = change;
      const score = mention.vector && doc.embedding ? cosine(mention.vector, doc.embedding) : undefined;
      const known = candidates.get(doc.id);
      if (known) known.score = Math.max(known.score ?? -1, score ?? -1);
      else if (matchesNameQuery(doc, mention.normalised) || score !== undefined) candidates.set(doc.id, { doc, score });
    }
    return [...candidates.values()];
  }

  /** Writes every changed entity in one bulk; entities another writer changed meanwhile are redone. */
  private async write(changes: EntityChange[], sourceId: string, now: string): Promise<void> {
    let pending = changes.filter((change) => change.changed);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === MAX_CONFLICT_RETRIES) {
        throw new Error(`entities kept changing under ${MAX_CONFLICT_RETRIES} rounds of concurrent writers; the activity will retry`);
      }
      // Refreshed at once: other jobs' name lookups (searches) and entity listings must see the batch.
      const response = await this.deps.es.bulk({
        index: this.deps.index,
        refresh: true,
        operations: pending.flatMap((change) => [
          change.version
            ? { index: { _id: change.id, if_seq_no: change.version.seqNo, if_primary_term: change.version.primaryTerm } }
            : { create: { _id: change.id } },
          change.doc,
        ]),
      });
      const conflicted: EntityChange[] = [];
      response.items.forEach((item, i) => {
        const result = item.index ?? item.create;
        if (result?.status === 409) conflicted.push(pending[i]!);
        else if (result?.error) throw upstreamFailure(`Elasticsearch rejected entity ${result._id}: ${result.error.type}: ${result.error.reason}`);
      });
      if (conflicted.length === 0) return;
      const current = await this.read(conflicted.map((change) => change.id));
      for (const change of conflicted) {
        const latest = current.get(change.id);
        // Deleted between our read and our write: resolving again from the start is the safe answer.
        if (!latest) throw upstreamFailure(`entity ${change.id} disappeared while it was being resolved; the activity will retry`);
        change.rebase(latest, sourceId, now);
      }
      pending = conflicted.filter((change) => change.changed);
    }
  }

  /** Entities by id, read in real time (a write not yet refreshed is seen), with their versions. */
  private async read(ids: string[]): Promise<Map<string, Stored>> {
    const { docs } = await this.deps.es.mget<EntityDoc>({ index: this.deps.index, ids: [...new Set(ids)] });
    const stored = new Map<string, Stored>();
    for (const doc of docs) {
      if ('found' in doc && doc.found && doc._source) {
        stored.set(doc._id, { doc: doc._source, version: { seqNo: doc._seq_no!, primaryTerm: doc._primary_term! } });
      }
    }
    return stored;
  }

  /** One search per body in a single round trip; hits keep their versions and cosine similarity. */
  private async searchEach(bodies: estypes.MsearchMultisearchBody[]): Promise<Found[][]> {
    if (bodies.length === 0) return [];
    const { responses } = await this.deps.es.msearch<EntityDoc>({ index: this.deps.index, searches: bodies.flatMap((body) => [{}, body]) });
    return responses.map((response, i) => {
      if ('error' in response) throw upstreamFailure(`entity lookup failed: ${response.error.type}: ${response.error.reason}`);
      const knn = Boolean(bodies[i]!.knn);
      return response.hits.hits
        .filter((hit) => hit._source)
        .map((hit) => ({
          doc: hit._source!,
          version: { seqNo: hit._seq_no!, primaryTerm: hit._primary_term! },
          // ES scores cosine as (1 + cos) / 2.
          ...(knn ? { score: 2 * (hit._score ?? 0) - 1 } : {}),
        }));
    });
  }
}

/** The batch's change to one entity: where it started (absent for a new entity) and what folded in. */
class EntityChange {
  changed = false;
  private mentions: NormalisedMention[] = [];

  constructor(
    private base: Stored | undefined,
    public doc: EntityDoc = base!.doc,
  ) {}

  static create(doc: EntityDoc, mention: NormalisedMention): EntityChange {
    const change = new EntityChange(undefined, doc);
    change.mentions.push(mention);
    change.changed = true;
    return change;
  }

  get id(): string {
    return this.doc.id;
  }

  get version(): Stored['version'] | undefined {
    return this.base?.version;
  }

  fold(sourceId: string, mention: NormalisedMention, now: string): void {
    this.mentions.push(mention);
    const next = mergedEntity(this.doc, sourceId, mention, now);
    if (next) {
      this.doc = next;
      this.changed = true;
    }
  }

  /** Another writer won: start from their version and fold this batch's mentions in again. */
  rebase(latest: Stored, sourceId: string, now: string): void {
    const mentions = this.mentions;
    this.base = latest;
    this.doc = latest.doc;
    this.mentions = [];
    this.changed = false;
    for (const mention of mentions) this.fold(sourceId, mention, now);
  }
}

/** Each normalised name once; fuller names first, so "Melanie" is the entity a "Mel" in the same batch joins. */
function distinctMentions(mentions: Mention[]): NormalisedMention[] {
  const unique = new Map<string, NormalisedMention>();
  for (const mention of mentions) {
    const normalised = normaliseEntityName(mention.name);
    if (normalised && !unique.has(normalised)) unique.set(normalised, { ...mention, normalised });
  }
  return [...unique.values()].sort((a, b) => b.normalised.split(' ').length - a.normalised.split(' ').length || b.normalised.length - a.normalised.length);
}
