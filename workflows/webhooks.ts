import { ApplicationFailure, patched, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/registry';
import type { DeliveryOutcome } from '../activities/webhooks';
import type { JobProgress } from '../lib/domain/job';
import type { WebhookEvent } from '../lib/domain/webhook-event';
import { webhookTaskQueue } from '../lib/temporal/task-queues';
import { failureReason } from './ingest/failures';

export interface WebhookDeliveryInput {
  tenant: string;
  event: WebhookEvent;
  webhooks: string[];
  /** The job as it ended: the event's `data`. */
  job: JobProgress;
  /** The job's run that ended (its event id derives from it). */
  runId: string;
}

// A receiver that is down is retried with backoff for three days (2 s, 6 s, 18 s, … then hourly),
// always with the same event id, so a receiver that took an attempt it failed to answer can
// deduplicate. A refused address is bad input: not retried.
const DELIVERY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '72 hours',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 3, maximumInterval: '1 hour' },
};

/**
 * Tells a tenant's webhooks that a job ended: one delivery per subscription, side by side, each
 * retried on its own. Started by the ingest workflow as it finishes, as an abandoned child: the job's
 * status never waits for a receiver. Fails (visibly, in the Temporal UI) when a delivery gave up.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<DeliveryOutcome[]> {
  // On the deliveries' own task queue (lib/temporal/task-queues.ts); deliveries started before it
  // replay on the job queue they were scheduled on.
  const taskQueue = patched('webhook-task-queue') ? webhookTaskQueue(workflowInfo().taskQueue) : undefined;
  const { deliverJobEvent } = proxyActivities<Activities>({ ...DELIVERY, taskQueue });
  const failures: string[] = [];
  const outcomes = await Promise.all(
    input.webhooks.map(async (id): Promise<DeliveryOutcome | undefined> => {
      try {
        return await deliverJobEvent(input.tenant, id, input.event, input.job, input.runId);
      } catch (error) {
        failures.push(`${id}: ${failureReason(error).message}`);
        return undefined;
      }
    }),
  );
  if (failures.length > 0) {
    throw ApplicationFailure.nonRetryable(`${failures.length} of ${input.webhooks.length} deliveries gave up: ${failures.join('; ')}`, 'WebhookDeliveryFailed');
  }
  return outcomes.filter((outcome): outcome is DeliveryOutcome => outcome !== undefined);
}
