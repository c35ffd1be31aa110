import { activityBoundary } from '../lib/errors';
import { createBackfillActivities } from './backfill';
import { createChunkActivity } from './chunk';
import type { ActivityDeps } from './deps';
import { createExtractActivity } from './extract';
import { createFetchActivity } from './fetch';
import { createIndexActivity } from './index-memories';
import { createParseActivity } from './parse';
import { createRecordJobActivities } from './record-job';
import { createResolveEntitiesActivity } from './resolve-entities';
import { createWebhookActivities } from './webhooks';
import { createWriteActiveActivity } from './write-active';

/**
 * Every activity the worker registers, bound to its services. Bad input becomes a non-retryable
 * failure. Each is counted in `deps.activitiesInFlight` while it runs.
 */
export function createActivities(deps: ActivityDeps) {
  const { recordJobSummary, recordSource, retireEarlierVersions, completeJob } = createRecordJobActivities(deps);
  const activities = {
    fetchSource: activityBoundary(createFetchActivity(deps)),
    parseSource: activityBoundary(createParseActivity(deps)),
    chunkDocument: activityBoundary(createChunkActivity(deps)),
    extractMemories: activityBoundary(createExtractActivity(deps)),
    resolveEntities: activityBoundary(createResolveEntitiesActivity(deps)),
    indexMemories: activityBoundary(createIndexActivity(deps)),
    recordJobSummary: activityBoundary(recordJobSummary),
    recordSource: activityBoundary(recordSource),
    retireEarlierVersions: activityBoundary(retireEarlierVersions),
    completeJob: activityBoundary(completeJob),
    writeActiveFragments: activityBoundary(createWriteActiveActivity(deps)),
    deliverJobEvent: activityBoundary(createWebhookActivities(deps).deliverJobEvent),
    ...createBackfillActivities(deps),
  };
  return Object.fromEntries(Object.entries(activities).map(([name, activity]) => [name, deps.activitiesInFlight.counting(activity)])) as typeof activities;
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps };
