import { Context } from '@temporalio/activity';
import { blobKeys, getJson, putJson } from '../lib/blob/store';
import type { EntityRef } from '../lib/domain/memory';
import { normaliseEntityName } from '../lib/entities/names';
import { EntityResolver, entityRefsOf } from '../lib/entities/resolver';
import type { ExtractedMemory } from '../lib/models/extractor';
import type { ActivityDeps } from './deps';
import { stopIfCancelled } from './liveness';
import type { BatchRange, ExtractResult, ResolveResult, StageInput } from './types';

export type ResolvedMemory = ExtractedMemory & { entityRefs: EntityRef[] };

export { normaliseEntityName };

/**
 * How the workflow runs a batch's resolution: `afterLocalTry` when the batch was tried as a local
 * activity first and that failed (a small job: workflows/ingest/activities.ts, localFirst). The local
 * try may have written entities and stopped before looking around for splits; this regular activity's
 * attempt numbers start again at 1, so it counts that try as its first attempt.
 */
export interface ResolveTry {
  afterLocalTry?: boolean;
}

/**
 * Entity mentions → the tenant's entities (lib/entities/resolver.ts): names, aliases and embedding
 * similarity against the entities index; memories then point to entity ids. The batch's entity
 * changes are written in one refreshed bulk, so listings show them once the activity returns. Safe
 * to retry: ids are deterministic and merges are set unions.
 */
export function createResolveEntitiesActivity(deps: ActivityDeps) {
  const resolver = new EntityResolver({ es: deps.es, indices: deps.indices, embedder: deps.embedder, promptRefresh: deps.promptRefresh });
  return async function resolveEntities({ jobId, sourceId, request }: StageInput, extracted: ExtractResult, range: BatchRange, { afterLocalTry = false }: ResolveTry = {}): Promise<ResolveResult> {
    // Entity vectors are compared and written like memories': under another model's index the job waits.
    if (deps.embedder) await deps.embeddingMatch.assertVectorsFit('entities');
    const memories = await getJson<ExtractedMemory[]>(deps.blobs, extracted.memoriesKey);
    stopIfCancelled();
    const entities = await resolver.resolve(
      request.tenant,
      sourceId,
      memories.flatMap((memory) => memory.entities),
      { attempt: Context.current().info.attempt + (afterLocalTry ? 1 : 0) },
    );
    const resolved: ResolvedMemory[] = memories.map((memory) => ({ ...memory, entityRefs: entityRefsOf(memory.entities, entities) }));
    const resolvedKey = blobKeys.resolved(request.tenant, jobId, range.batch);
    await putJson(deps.blobs, resolvedKey, resolved);
    return { resolvedKey, entities: new Set([...entities.values()].map((entity) => entity.id)).size };
  };
}
