import type { Client, estypes } from '@elastic/elasticsearch';
import type { EntityRef } from '../domain/memory';
import { entityId } from '../ids';
import type { Embedder } from '../models/embedder';
import { isFullerName, lookupKeys, namesCompatible, normaliseEntityName, shareWord, typesCompatible } from './names';

/** An entity as stored in the entities index (one per tenant and real-world thing). */
export interface EntityDoc {
  id: string;
  tenant: string;
  name: string;
  normalized_name: string;
  type: string;
  aliases: string[];
  normalized_aliases: string[];
  /** Ids a surface form would have had on its own, recorded when it was merged into this entity. */
  merged_from?: string[];
  /** Distinct sources that mentioned the entity. */
  mention_count: number;
  /** The most recent sources that mentioned it (bounded; mention_count keeps counting). */
  source_ids: string[];
  first_seen_at: string;
  last_seen_at: string;
  embedding?: number[];
  embedding_model?: string;
}

export interface Mention {
  name: string;
  type: string;
}

export interface EntityResolverDeps {
  es: Client;
  /** The entities alias. */
  index: string;
  embedder?: Embedder;
}

/** Cosine above which two differently written names of one type that share a word are one entity. */
const SIMILAR_NAMES = 0.9;
const KEPT_SOURCES = 100;
const MAX_CONFLICT_RETRIES = 20;

/**
 * Mentions → the tenant's entities. A mention resolves, in order, to the entity of its own normalised
 * name, to an entity that already has it as an alias, to the one entity whose name is compatible with
 * it ("Mel" → "Melanie", "Bob" → "Bob Smith") or whose name embeds almost identically, or else to a new
 * entity. Ids derive from tenant + normalised name, so a retried activity or a re-sent job finds what
 * it wrote before instead of writing it again. This Elasticsearch has no scripting, so every change
 * is read → modify → write with optimistic concurrency (if_seq_no), retried when another writer won.
 */
export class EntityResolver {
  constructor(private readonly deps: EntityResolverDeps) {}

  /** Resolves every mention; answers the entity for each normalised name. */
  async resolve(tenant: string, sourceId: string, mentions: Mention[], now = new Date().toISOString()): Promise<Map<string, EntityRef>> {
    const unique = new Map<string, Mention>();
    for (const mention of mentions) {
      const normalised = normaliseEntityName(mention.name);
      if (normalised && !unique.has(normalised)) unique.set(normalised, mention);
    }
    // Fuller names first: "Melanie" then becomes the entity that a "Mel" in the same batch joins.
    const ordered = [...unique.entries()].sort(([a], [b]) => b.split(' ').length - a.split(' ').length || b.length - a.length);
    const vectors = this.deps.embedder ? await this.deps.embedder.embed(ordered.map(([, mention]) => mention.name)) : undefined;
    const resolved = new Map<string, EntityRef>();
    for (const [i, [normalised, mention]] of ordered.entries()) {
      const entity = await this.resolveOne(tenant, sourceId, { ...mention, normalised, vector: vectors?.[i] }, now);
      resolved.set(normalised, { id: entity.id, name: mention.name, type: entity.type });
    }
    return resolved;
  }

  private async resolveOne(tenant: string, sourceId: string, mention: Mention & { normalised: string; vector?: number[] }, now: string): Promise<EntityDoc> {
    const ownId = entityId(tenant, mention.normalised);
    if (await this.exists(ownId)) return this.merge(ownId, sourceId, mention, now);
    const existing = await this.findExisting(tenant, mention);
    if (existing) return this.merge(existing, sourceId, mention, now);
    // Another writer may create the same id between our look and our write: then ours joins theirs.
    return (await this.create(tenant, sourceId, ownId, mention, now)) ?? this.merge(ownId, sourceId, mention, now);
  }

  /** The one existing entity a new surface form belongs to, if exactly one fits. */
  private async findExisting(tenant: string, mention: Mention & { normalised: string; vector?: number[] }): Promise<string | undefined> {
    const candidates = new Map<string, { doc: EntityDoc; score?: number }>();
    const keys = lookupKeys(mention.normalised);
    const byName = await this.search({
      size: 50,
      query: {
        bool: {
          filter: [{ term: { tenant } }],
          should: [{ terms: { normalized_name: keys } }, { terms: { normalized_aliases: keys } }, ...prefixQueries(mention.normalised)],
          minimum_should_match: 1,
        },
      },
    });
    for (const hit of byName) candidates.set(hit._id!, { doc: hit._source! });
    if (mention.vector) {
      const similar = await this.search({
        size: 10,
        knn: { field: 'embedding', query_vector: mention.vector, k: 10, num_candidates: 100, filter: [{ term: { tenant } }] },
      });
      // ES scores cosine as (1 + cos) / 2.
      for (const hit of similar) candidates.set(hit._id!, { doc: hit._source!, score: 2 * (hit._score ?? 0) - 1 });
    }
    const fits = [...candidates.values()].filter(({ doc, score }) => {
      if (!typesCompatible(doc.type, mention.type)) return false;
      if (doc.normalized_name === mention.normalised || doc.normalized_aliases?.includes(mention.normalised)) return true;
      // Against the entity's own (fullest) name, not its short aliases: "Melissa" is no "Mel" → "Melanie".
      if (namesCompatible(doc.normalized_name, mention.normalised)) return true;
      return (score ?? 0) >= SIMILAR_NAMES && shareWord(doc.normalized_name, mention.normalised);
    });
    const exactAlias = fits.filter(({ doc }) => doc.normalized_aliases?.includes(mention.normalised));
    const chosen = exactAlias.length === 1 ? exactAlias : fits;
    // Two entities fit ("Bob" with "Bob Smith" and "Bob Jones"): guessing would merge people wrongly.
    return chosen.length === 1 ? chosen[0]!.doc.id : undefined;
  }

  private async create(tenant: string, sourceId: string, id: string, mention: Mention & { normalised: string; vector?: number[] }, now: string): Promise<EntityDoc | undefined> {
    const doc: EntityDoc = {
      id,
      tenant,
      name: mention.name,
      normalized_name: mention.normalised,
      type: mention.type,
      aliases: [mention.name],
      normalized_aliases: [mention.normalised],
      mention_count: 1,
      source_ids: [sourceId],
      first_seen_at: now,
      last_seen_at: now,
      ...(mention.vector && this.deps.embedder ? { embedding: mention.vector, embedding_model: this.deps.embedder.model } : {}),
    };
    try {
      // Refreshed at once: the next mention's alias lookup (a search) must see this entity.
      await this.deps.es.index({ index: this.deps.index, id, document: doc, op_type: 'create', refresh: true });
      return doc;
    } catch (error) {
      if (statusOf(error) === 409) return undefined; // another writer created it first: merge into theirs
      throw error;
    }
  }

  /** Adds the surface form and the source to an entity, retrying when a concurrent writer got there first. */
  private async merge(id: string, sourceId: string, mention: Mention & { normalised: string }, now: string): Promise<EntityDoc> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const current = await this.deps.es.get<EntityDoc>({ index: this.deps.index, id });
      const doc = current._source!;
      const next = mergedEntity(doc, sourceId, mention, now);
      if (!next) return doc;
      try {
        // Only a new surface form changes what alias lookups search; a new source is read back by id
        // (realtime), so it skips the forced refresh that made hot entities a bottleneck under load.
        const newForm = next.normalized_aliases !== doc.normalized_aliases;
        await this.deps.es.index({ index: this.deps.index, id, document: next, if_seq_no: current._seq_no, if_primary_term: current._primary_term, refresh: newForm });
        return next;
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
      }
    }
    throw new Error(`entity ${id} kept changing under ${MAX_CONFLICT_RETRIES} concurrent writers; the activity will retry`);
  }

  private async exists(id: string): Promise<boolean> {
    return this.deps.es.exists({ index: this.deps.index, id });
  }

  private async search(body: Omit<estypes.SearchRequest, 'index'>) {
    const response = await this.deps.es.search<EntityDoc>({ index: this.deps.index, ...body });
    return response.hits.hits.filter((hit) => hit._source);
  }
}

/** The entity with the mention folded in, or undefined when it already holds both form and source. */
export function mergedEntity(doc: EntityDoc, sourceId: string, mention: Mention & { normalised: string }, now: string): EntityDoc | undefined {
  const normalisedAliases = doc.normalized_aliases ?? [doc.normalized_name];
  const newForm = !normalisedAliases.includes(mention.normalised);
  const newSource = !doc.source_ids?.includes(sourceId);
  if (!newForm && !newSource) return undefined;
  const next: EntityDoc = { ...doc, last_seen_at: now };
  if (newSource) {
    next.source_ids = [...(doc.source_ids ?? []), sourceId].slice(-KEPT_SOURCES);
    next.mention_count = (doc.mention_count ?? 0) + 1;
  }
  if (newForm) {
    next.aliases = [...(doc.aliases ?? []), mention.name];
    next.normalized_aliases = [...normalisedAliases, mention.normalised];
    next.merged_from = [...new Set([...(doc.merged_from ?? []), entityId(doc.tenant, mention.normalised)])];
    // "Mel" first, "Melanie" later: the entity is then shown under the fuller name.
    if (isFullerName(mention.normalised, doc.normalized_name)) {
      next.name = mention.name;
      next.normalized_name = mention.normalised;
    }
  }
  return next;
}

/** Entities whose name or alias starts with the mention's first word: "mel" finds "melanie". */
function prefixQueries(normalised: string): estypes.QueryDslQueryContainer[] {
  const first = normalised.split(' ')[0] ?? '';
  if (first.length < 3) return [];
  return [{ prefix: { normalized_name: first } }, { prefix: { normalized_aliases: first } }];
}

const statusOf = (error: unknown) => (error as { meta?: { statusCode?: number } }).meta?.statusCode;
