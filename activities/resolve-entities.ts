import { blobKeys, getJson, putJson } from '../lib/blob/store';
import type { EntityRef } from '../lib/domain/memory';
import { entityId } from '../lib/ids';
import type { ExtractedMemory } from '../lib/models/extractor';
import type { ActivityDeps } from './deps';
import type { BatchRange, ExtractResult, ResolveResult, StageInput } from './types';

export type ResolvedMemory = ExtractedMemory & { entityRefs: EntityRef[] };

export function normaliseEntityName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/['’]s\b/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
    .toLowerCase();
}

/** Entity mentions → per-tenant entity ids, recorded in the entities index. */
export function createResolveEntitiesActivity(deps: ActivityDeps) {
  return async function resolveEntities({ jobId, sourceId, request }: StageInput, extracted: ExtractResult, range: BatchRange): Promise<ResolveResult> {
    const memories = await getJson<ExtractedMemory[]>(deps.blobs, extracted.memoriesKey);
    const now = new Date().toISOString();
    const entities = new Map<string, { id: string; name: string; type: string; normalised: string }>();
    const resolved: ResolvedMemory[] = memories.map((memory) => ({
      ...memory,
      entityRefs: memory.entities.flatMap((entity) => {
        const normalised = normaliseEntityName(entity.name);
        if (!normalised) return [];
        const id = entityId(request.tenant, normalised);
        entities.set(id, { id, name: entity.name, type: entity.type, normalised });
        return [{ id, name: entity.name, type: entity.type }];
      }),
    }));
    if (entities.size > 0) {
      await deps.es.bulk({
        refresh: false,
        operations: [...entities.values()].flatMap((entity) => [
          { update: { _index: deps.indices.entities, _id: entity.id } },
          {
            doc: { last_seen_at: now },
            upsert: {
              id: entity.id,
              tenant: request.tenant,
              name: entity.name,
              normalized_name: entity.normalised,
              type: entity.type,
              aliases: [entity.name],
              normalized_aliases: [entity.normalised],
              source_ids: [sourceId],
              first_seen_at: now,
              last_seen_at: now,
            },
          },
        ]),
      });
    }
    const resolvedKey = blobKeys.resolved(request.tenant, jobId, range.batch);
    await putJson(deps.blobs, resolvedKey, resolved);
    return { resolvedKey, entities: entities.size };
  };
}
