import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { getJson } from '../lib/blob/store';
import { countTokens } from '../lib/chunking/tokens';
import { Preference, PREFERENCE_CONFIDENCE, preferenceId, preferenceText } from '../lib/domain/preference';
import type { StoredMemory } from '../lib/domain/memory';
import { memoryScope, requestProvenance } from '../lib/domain/scope';
import { bulkFailure } from '../lib/elasticsearch/client';
import type { SharedRefresh } from '../lib/elasticsearch/refresh';
import { EntityResolver, entityRefsOf } from '../lib/entities/resolver';
import { EntitySplits } from '../lib/entities/splits';
import { badInput } from '../lib/errors';
import { assertNotBeingDeleted, type Leases } from '../lib/leases';
import { stemmedText } from '../lib/search/analysis';
import type { ActivityDeps } from './deps';
import type { StageInput } from './types';
import type { ActiveWriteResult } from './write-active';

export const StatedPreferences = z.object({ preferences: z.array(Preference).min(1) });

/**
 * Tex's stated preferences, each written as a `preference` memory as it is (no extraction): its text
 * says what is preferred or disliked, its entity is resolved as extraction's are, its level is its
 * confidence, and the time it was stated its date. Searchable when this returns, as a turn's fragment
 * is. Stated again, a preference replaces its memory (preferenceId); one deleted before is stored
 * again, since stating it is asking for it.
 */
export function createWritePreferences(deps: ActivityDeps, refresh: SharedRefresh, leases: Leases) {
  const resolver = new EntityResolver({ es: deps.es, indices: deps.indices, embedder: deps.embedder, promptRefresh: deps.promptRefresh });
  const splits = new EntitySplits(deps.es, deps.indices);
  return async function writePreferences({ jobId, sourceId, request }: StageInput): Promise<ActiveWriteResult> {
    if (!request.blobKey) throw badInput('stated preferences need their upload in the blob store');
    const { preferences } = StatedPreferences.parse(await getJson(deps.blobs, request.blobKey));
    await assertNotBeingDeleted(leases, request.tenant, sourceId);
    const mentions = preferences.map((preference) => ({ name: preference.entity, type: preference.entity_type.toLowerCase() }));
    const entities = await resolver.resolve(request.tenant, sourceId, mentions, { attempt: Context.current().info.attempt });
    const texts = preferences.map(preferenceText);
    const vectorsFit = deps.embedder && !(await deps.embeddingMatch.mismatchOf('memories', { fresh: true }));
    const vectors = vectorsFit ? await deps.embedder!.embed(texts, { urgent: true }) : undefined;
    const now = new Date().toISOString();
    const docs: StoredMemory[] = preferences.map((preference, i) => ({
      id: `mem_${preferenceId(request.tenant, request.scope, preference)}`,
      tenant: request.tenant,
      text: texts[i]!,
      stems: stemmedText(texts[i]),
      type: 'preference',
      confidence: PREFERENCE_CONFIDENCE[preference.confidence],
      entities: entityRefsOf([mentions[i]!], entities),
      scope: memoryScope(request.tenant, request.scope),
      provenance: {
        ...requestProvenance(request, sourceId, jobId),
        document_date: preference.timestamp ?? undefined,
        timestamp: preference.timestamp ?? undefined,
        chunk_index: i,
      },
      metadata: {
        category: preference.category,
        entity_type: preference.entity_type,
        preference_type: preference.preference_type,
        confidence: preference.confidence,
        ...(preference.context ? { context: preference.context } : {}),
        ...(preference.source ? { source: preference.source } : {}),
      },
      created_at: now,
      updated_at: null,
      ...(vectors && deps.embedder ? { embedding: vectors[i], embedding_model: deps.embedder.model } : {}),
    }));
    const response = await deps.es.bulk({
      operations: docs.flatMap((doc) => [
        { delete: { _index: deps.indices.tombstones, _id: doc.id } },
        { index: { _index: deps.indices.memories, _id: doc.id } },
        doc,
      ]),
    });
    // A preference never deleted has no tombstone: its delete is `not_found`, no error.
    if (response.errors) throw bulkFailure(response, 'stated preferences');
    // An entity merged away between its resolving and this write (a split healed by another job): followed, as after a job's index write.
    await splits.followMerges(request.tenant, docs.flatMap((doc) => doc.entities.map((entity) => entity.id)));
    await refresh.refresh();
    return { fragmentIds: docs.map((doc) => doc.id), newTurns: docs.length, tokensIn: texts.reduce((sum, text) => sum + countTokens(text), 0) };
  };
}
