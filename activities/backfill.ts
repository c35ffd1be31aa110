import { activityBoundary } from '../lib/errors';
import { createBackfillIngestActivities } from './backfill-ingest';
import { createReembedActivity } from './backfill-reembed';
import { createReindexActivities } from './backfill-reindex';
import { createReindexEntitiesActivity } from './backfill-reindex-entities';
import { createBackfillScanActivities } from './backfill-scan';
import type { ActivityDeps } from './deps';

/** The backfill workflow's activities (re-embed, re-extract, reindex, import), bound to their services. */
export function createBackfillActivities(deps: ActivityDeps) {
  const all = {
    ...createBackfillScanActivities(deps),
    reembedMemories: createReembedActivity(deps),
    ...createReindexActivities(deps),
    copyEntities: createReindexEntitiesActivity(deps),
    ...createBackfillIngestActivities(deps),
  };
  return Object.fromEntries(Object.entries(all).map(([name, fn]) => [name, activityBoundary(fn as (...args: unknown[]) => Promise<unknown>)])) as typeof all;
}
