import { z } from 'zod';
import { entityId } from '../ids';
import { isFullerName, isGenericType } from './names';

/** An entity as the API shows it: as stored in the entities index, without its name's vector. */
export const Entity = z.object({
  id: z.string(),
  tenant: z.string(),
  name: z.string(),
  normalized_name: z.string(),
  type: z.string(),
  aliases: z.array(z.string()),
  normalized_aliases: z.array(z.string()),
  /** Ids a surface form would have had on its own, recorded when it was merged into this entity. */
  merged_from: z.array(z.string()).optional(),
  /** Distinct sources that mentioned the entity. */
  mention_count: z.number().int(),
  /** The most recent sources that mentioned it (bounded; mention_count keeps counting). */
  source_ids: z.array(z.string()),
  first_seen_at: z.string(),
  last_seen_at: z.string(),
  /** The model of the name's vector, when it has one. */
  embedding_model: z.string().optional(),
});
export type Entity = z.infer<typeof Entity>;

/** An entity as stored in the entities index (one per tenant and real-world thing). */
export type EntityDoc = Entity & { embedding?: number[] };

export interface Mention {
  name: string;
  type: string;
}

/** A mention on its way to an entity: its normalised name and, when it may need one, its name's vector. */
export interface NormalisedMention extends Mention {
  normalised: string;
  vector?: number[];
}

/** An entity names its latest sources only; `mention_count` counts them all. */
export const KEPT_SOURCES = 100;

/** A new entity for a surface form nothing existing fits. */
export function newEntity(
  tenant: string,
  sourceId: string,
  mention: NormalisedMention,
  now: string,
  embeddingModel: string | undefined,
): EntityDoc {
  return {
    id: entityId(tenant, mention.normalised),
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
    ...(mention.vector && embeddingModel ? { embedding: mention.vector, embedding_model: embeddingModel } : {}),
  };
}

/** The entity with the mention folded in, or undefined when it already holds both form and source. */
export function mergedEntity(doc: EntityDoc, sourceId: string, mention: NormalisedMention, now: string): EntityDoc | undefined {
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

/** Whether `a` was first seen before `b` (by id when at the same moment): of a split, the earlier one stays. */
export function seenBefore(a: EntityDoc, b: EntityDoc): boolean {
  return a.first_seen_at < b.first_seen_at || (a.first_seen_at === b.first_seen_at && a.id < b.id);
}

/** An entity as the mention that would have named it: its fullest name, type and name's vector. */
export function mentionOf(doc: EntityDoc): NormalisedMention {
  return { name: doc.name, type: doc.type, normalised: doc.normalized_name, vector: doc.embedding };
}

/**
 * The entity with another entity of the same thing folded in (a split healed: lib/entities/splits.ts):
 * the other's names as aliases, its id and merges as merges, its sources. `withdrawn` are sources an
 * earlier try folded in that the other no longer names (a delete of them ran meanwhile). Undefined
 * when that changes nothing, so folding the same entity in again (a retry) is a no-op.
 */
export function absorbedEntity(doc: EntityDoc, other: EntityDoc | undefined, withdrawn: string[] = []): EntityDoc | undefined {
  const kept = doc.source_ids.filter((sourceId) => !withdrawn.includes(sourceId));
  const added = other?.source_ids.filter((sourceId) => !kept.includes(sourceId)) ?? [];
  const normalisedAliases = doc.normalized_aliases ?? [doc.normalized_name];
  const newForms = (other?.normalized_aliases ?? []).flatMap((normalised, i) => (normalisedAliases.includes(normalised) ? [] : [{ normalised, name: other!.aliases[i] ?? other!.name }]));
  const first = other !== undefined && !doc.merged_from?.includes(other.id);
  if (!first && added.length === 0 && newForms.length === 0 && kept.length === doc.source_ids.length) return undefined;
  const sourceIds = [...kept, ...added].slice(-KEPT_SOURCES);
  // Counted once: the other's sources it no longer lists (past KEPT_SOURCES) the first time it is folded in.
  const unlisted = first ? other.mention_count - other.source_ids.length : 0;
  const next: EntityDoc = {
    ...doc,
    source_ids: sourceIds,
    mention_count: Math.max(sourceIds.length, doc.mention_count - (doc.source_ids.length - kept.length) + added.length + unlisted),
  };
  if (!other) return next;
  next.aliases = [...doc.aliases, ...newForms.map(({ name }) => name)];
  next.normalized_aliases = [...normalisedAliases, ...newForms.map(({ normalised }) => normalised)];
  next.merged_from = [...new Set([...(doc.merged_from ?? []), other.id, ...(other.merged_from ?? [])])];
  if (other.first_seen_at < doc.first_seen_at) next.first_seen_at = other.first_seen_at;
  if (other.last_seen_at > doc.last_seen_at) next.last_seen_at = other.last_seen_at;
  if (isFullerName(other.normalized_name, doc.normalized_name)) {
    next.name = other.name;
    next.normalized_name = other.normalized_name;
  }
  // A type that says nothing ("thing") gives way to the other's specific one.
  if (isGenericType(doc.type)) next.type = other.type;
  if (!doc.embedding && other.embedding) Object.assign(next, { embedding: other.embedding, embedding_model: other.embedding_model });
  return next;
}
