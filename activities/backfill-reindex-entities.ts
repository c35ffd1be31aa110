import { activityInfo, heartbeat } from '@temporalio/activity';
import type { estypes } from '@elastic/elasticsearch';
import type { ReindexPlan } from '../lib/backfill/request';
import { assertBulkOk } from './backfill-reembed';
import { entityText, withWorkerVectors } from './backfill-reindex';
import type { ActivityDeps } from './deps';

type Source = Record<string, unknown>;
const PAGE = 200;

interface EntityCopyCheckpoint {
  searchAfter?: estypes.SortResults;
  copied: number;
}

/**
 * The entities index moves with a reindex: it holds vectors of the same model as the memories, and an
 * alias pointing at another model's vectors would make entity resolution compare noise. Entities are
 * few next to memories, so one activity walks them all; it heartbeats its cursor, and a retry resumes
 * there. What changes during the walk is caught up after the swap (catchUpEntities).
 */
export function createReindexEntitiesActivity(deps: ActivityDeps) {
  return async function copyEntities(plan: ReindexPlan): Promise<number> {
    if (!plan.entities) return 0;
    const { source, target } = plan.entities;
    const checkpoint = (activityInfo().heartbeatDetails as EntityCopyCheckpoint | undefined) ?? { copied: 0 };
    let { searchAfter, copied } = checkpoint;
    for (;;) {
      const page = await deps.es.search<Source>({ index: source, sort: [{ id: 'asc' }], size: PAGE, search_after: searchAfter, track_total_hits: false });
      const hits = page.hits.hits.filter((hit) => hit._source);
      if (hits.length === 0) break;
      // Already in the target at least as new (an attempt that died after its write): not embedded again.
      const inTarget = await deps.es.mget<Source>({ index: target, ids: hits.map((hit) => hit._id!), _source_includes: ['last_seen_at'] });
      const targetSeen = new Map(inTarget.docs.map((doc) => [doc._id, 'found' in doc && doc.found ? String(doc._source?.last_seen_at ?? '') : undefined]));
      const toCopy = hits.filter((hit) => {
        const seen = targetSeen.get(hit._id!);
        return seen === undefined || String(hit._source!.last_seen_at ?? '') > seen;
      });
      if (toCopy.length) {
        const bodies = await withWorkerVectors(deps.embedder, toCopy.map((hit) => hit._source!), entityText);
        const response = await deps.es.bulk({ operations: toCopy.flatMap((hit, i) => [{ index: { _index: target, _id: hit._id } }, bodies[i]]) });
        assertBulkOk(response, 'copied entities');
        copied += toCopy.length;
      }
      searchAfter = hits[hits.length - 1]!.sort;
      heartbeat({ searchAfter, copied } satisfies EntityCopyCheckpoint);
      if (page.hits.hits.length < PAGE) break;
    }
    return copied;
  };
}
