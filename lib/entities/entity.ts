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

/**
 * The entity with the mention folded in: its form, source, and its type where the entity's says
 * nothing. Undefined when that changes nothing.
 */
export function mergedEntity(doc: EntityDoc, sourceId: string, mention: NormalisedMention, now: string): EntityDoc | undefined {
  const newForm = !knownForms(doc).includes(mention.normalised);
  const newSource = !doc.source_ids?.includes(sourceId);
  const type = moreSpecific(doc.type, mention.type);
  if (!newForm && !newSource && type === doc.type) return undefined;
  const next: EntityDoc = { ...doc, type, last_seen_at: now };
  if (newSource) {
    next.source_ids = [...(doc.source_ids ?? []), sourceId].slice(-KEPT_SOURCES);
    next.mention_count = (doc.mention_count ?? 0) + 1;
  }
  // "Mel" first, "Melanie" later: the entity is then shown under the fuller name.
  if (newForm) Object.assign(next, alsoKnownAs(doc, [mention], [entityId(doc.tenant, mention.normalised)], mention));
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
 * the other's names as aliases, its id and merges as merges, its sources, and its type where the
 * entity's says nothing, as a mention's is (mergedEntity). `withdrawn` are sources an
 * earlier try folded in that the other no longer names (a delete of them ran meanwhile). Undefined
 * when that changes nothing, so folding the same entity in again (a retry) is a no-op.
 */
export function absorbedEntity(doc: EntityDoc, other: EntityDoc | undefined, withdrawn: string[] = []): EntityDoc | undefined {
  const kept = doc.source_ids.filter((sourceId) => !withdrawn.includes(sourceId));
  const added = other?.source_ids.filter((sourceId) => !kept.includes(sourceId)) ?? [];
  const forms = other?.normalized_aliases.map((normalised, i) => ({ normalised, name: other.aliases[i] ?? other.name })) ?? [];
  const first = other !== undefined && !doc.merged_from?.includes(other.id);
  const newForms = forms.some(({ normalised }) => !knownForms(doc).includes(normalised));
  if (!first && added.length === 0 && !newForms && kept.length === doc.source_ids.length) return undefined;
  const sourceIds = [...kept, ...added].slice(-KEPT_SOURCES);
  // Counted once: the other's sources it no longer lists (past KEPT_SOURCES) the first time it is folded in.
  const unlisted = first ? other.mention_count - other.source_ids.length : 0;
  const next: EntityDoc = {
    ...doc,
    source_ids: sourceIds,
    mention_count: Math.max(sourceIds.length, doc.mention_count - (doc.source_ids.length - kept.length) + added.length + unlisted),
  };
  if (!other) return next;
  Object.assign(next, alsoKnownAs(doc, forms, [other.id, ...(other.merged_from ?? [])], { name: other.name, normalised: other.normalized_name }));
  next.type = moreSpecific(doc.type, other.type);
  if (other.first_seen_at < doc.first_seen_at) next.first_seen_at = other.first_seen_at;
  if (other.last_seen_at > doc.last_seen_at) next.last_seen_at = other.last_seen_at;
  if (!doc.embedding && other.embedding) Object.assign(next, { embedding: other.embedding, embedding_model: other.embedding_model });
  return next;
}

/** A name an entity is known by, as written and normalised. */
type Form = Pick<NormalisedMention, 'name' | 'normalised'>;

const knownForms = (doc: EntityDoc) => doc.normalized_aliases ?? [doc.normalized_name];

/**
 * The names of `doc` once `forms` name it too, as the ids `merged` (the entities they were, or would
 * have been, on their own): the forms it lacks as aliases, the ids among its merges, and `fullest` as
 * its name when that is the fuller one.
 */
function alsoKnownAs(doc: EntityDoc, forms: Form[], merged: string[], fullest: Form): Pick<EntityDoc, 'aliases' | 'normalized_aliases' | 'merged_from' | 'name' | 'normalized_name'> {
  const known = knownForms(doc);
  const added = forms.filter(({ normalised }) => !known.includes(normalised));
  const fuller = isFullerName(fullest.normalised, doc.normalized_name);
  return {
    aliases: [...(doc.aliases ?? []), ...added.map(({ name }) => name)],
    normalized_aliases: [...known, ...added.map(({ normalised }) => normalised)],
    merged_from: [...new Set([...(doc.merged_from ?? []), ...merged])],
    name: fuller ? fullest.name : doc.name,
    normalized_name: fuller ? fullest.normalised : doc.normalized_name,
  };
}

/** Of two types given one entity, the more specific: one that says nothing ("other", "thing") gives way. */
const moreSpecific = (type: string, other: string) => (isGenericType(type) && !isGenericType(other) ? other : type);
