import type { Client } from '@elastic/elasticsearch';
import type { EntityRef } from '../domain/memory';
import { entityId } from '../ids';
import type { PromptRefresh } from '../elasticsearch/refresh';
import { cosine, type Embedder } from '../models/embedder';
import { chooseEntity, matchesNameQuery, settledByAlias, type Candidate } from './candidates';
import { newEntity, type Mention, type NormalisedMention } from './entity';
import { nameLookup, searchEntities, similarityLookup, type Found } from './lookup';
import { normaliseEntityName } from './names';
import { EntitySplits, type SplitIndices } from './splits';
import { EntityChange, EntityWriter, readEntities } from './writer';

export type { EntityDoc, Mention } from './entity';
export { mergedEntity } from './entity';

export interface EntityResolverDeps {
  es: Client;
  /** The entities alias; the memories alias, where memories naming an entity merged into another (a split healed) are repointed; the sequences index, for the merges' leases. */
  indices: SplitIndices;
  embedder?: Embedder;
  /** Refreshes the entities index at once when every activity in the worker is waiting for a refresh (else writes wait for the scheduled one). */
  promptRefresh?: PromptRefresh;
}

/**
 * A memory's entity references from its mentions and what they resolved to: "Mel" and "Melanie" in
 * one memory are one entity, one reference, named as the memory first names it.
 */
export function entityRefsOf(mentions: Mention[], resolved: Map<string, EntityRef>): EntityRef[] {
  const refs = new Map<string, EntityRef>();
  for (const mention of mentions) {
    const entity = resolved.get(normaliseEntityName(mention.name));
    if (entity && !refs.has(entity.id)) refs.set(entity.id, { ...entity, name: mention.name });
  }
  return [...refs.values()];
}

export interface ResolveOptions {
  /** When the mentions were seen (an entity's first/last seen). */
  now?: string;
  attempt?: number;
}

/**
 * Mentions → the tenant's entities. A mention resolves, in order, to the entity of its own normalised
 * name, to an entity that already has it as an alias, to the one entity whose name is compatible with
 * it ("Mel" → "Melanie", "Bob" → "Bob Smith") or whose name embeds almost identically, or else to a new
 * entity. Ids derive from tenant + normalised name, so a retried activity or a re-sent job finds what
 * it wrote before instead of writing it again.
 *
 * A batch of mentions costs a fixed handful of requests, not a few per mention: one real-time read of
 * the mentions' own ids, one multi-search by name for the rest, one by embedding for the forms names
 * leave open (only those are embedded), then its share of one bulk write (lib/entities/writer.ts:
 * group commit with optimistic concurrency, as this Elasticsearch has no scripting). Mentions of the
 * batch see each other's effects in memory ("Melanie" created first is what a later "Mel" joins).
 * Batches running at once do not see each other's: once written, the entities a batch created look
 * again, one more multi-search, and splits are healed (lib/entities/splits.ts).
 */
export class EntityResolver {
  private readonly writer: EntityWriter;
  private readonly splits: EntitySplits;

  constructor(private readonly deps: EntityResolverDeps) {
    this.writer = new EntityWriter(deps.es, deps.indices.entities, deps.promptRefresh);
    this.splits = new EntitySplits(deps.es, deps.indices);
  }

  /**
   * Resolves every mention; answers the entity for each normalised name. `attempt` is the activity's
   * (1 the first time): a retry may have written entities its failed attempt did not heal.
   */
  async resolve(tenant: string, sourceId: string, mentions: Mention[], { now = new Date().toISOString(), attempt = 1 }: ResolveOptions = {}): Promise<Map<string, EntityRef>> {
    const ordered = distinctMentions(mentions);
    if (ordered.length === 0) return new Map();
    const ownId = (mention: NormalisedMention) => entityId(tenant, mention.normalised);

    const stored = await readEntities(this.deps.es, this.deps.indices.entities, ordered.map(ownId));
    const unknown = ordered.filter((mention) => !stored.has(ownId(mention)));
    const byName = await searchEntities(this.deps.es, this.deps.indices.entities, unknown.map((mention) => nameLookup(tenant, mention.normalised)));
    const open = this.deps.embedder ? unknown.filter((mention, i) => !settledByAlias(byName[i]!.map(({ doc }) => ({ doc })), mention)) : [];
    // A few short names the job cannot go on without: ahead of the memories queued for the model
    // (other jobs', and this job's own, handed over before extraction), which could take minutes.
    const vectors = open.length ? await this.deps.embedder!.embed(open.map((mention) => mention.name), { urgent: true }) : [];
    open.forEach((mention, i) => (mention.vector = vectors[i]));
    const bySimilarity = await searchEntities(this.deps.es, this.deps.indices.entities, open.map((mention) => similarityLookup(tenant, mention.vector!)));
    const found = new Map<NormalisedMention, Found[]>(unknown.map((mention, i) => [mention, byName[i]!]));
    open.forEach((mention, i) => found.get(mention)!.push(...bySimilarity[i]!));

    const changes = new Map<string, EntityChange>();
    const chosen = new Map<string, string>();
    for (const mention of ordered) {
      const id = ownId(mention);
      let change = changes.get(id);
      if (!change && stored.has(id)) change = EntityChange.of(stored.get(id)!);
      if (!change) {
        const existing = chooseEntity(this.candidates(found.get(mention) ?? [], changes, mention), mention);
        if (existing) change = changes.get(existing) ?? EntityChange.of(found.get(mention)!.find(({ doc }) => doc.id === existing)!);
      }
      if (change) change.fold(sourceId, mention, now);
      else change = EntityChange.create(newEntity(tenant, sourceId, mention, now, this.deps.embedder?.model), { sourceId, mention, now });
      changes.set(change.id, change);
      chosen.set(mention.normalised, change.id);
    }
    await this.writer.write([...changes.values()]);
    const written = [...changes.values()].map(({ doc }) => doc);
    // A merge into one of them that a worker dying left half done (the activity's retry, or any job that names the survivor).
    await this.splits.finishMerges(tenant, written);
    // The entities this batch created look again (a split is seen by whichever of its two sides is
    // written second), not every one its source named first, which a long document's later batches
    // would look at again and again. A retry looks again at those too: its failed attempt may have
    // written them and stopped before looking (source_ids[0] is the first source that named one).
    const created = written.filter((doc) => !changes.get(doc.id)!.base);
    const lookAgain = attempt > 1 ? written.filter((doc) => doc.source_ids[0] === sourceId) : created;
    const merged = await this.splits.heal(tenant, lookAgain, new Set(changes.keys()));

    return new Map(ordered.map((mention) => {
      const id = chosen.get(mention.normalised)!;
      return [mention.normalised, { ...(merged.get(id) ?? { id, type: changes.get(id)!.doc.type }), name: mention.name }];
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
