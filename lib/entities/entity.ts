import { z } from 'zod';
import { entityId } from '../ids';
import { isFullerName } from './names';

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
