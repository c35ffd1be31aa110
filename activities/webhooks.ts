import type { JobProgress } from '../lib/domain/job';
import type { WebhookEvent } from '../lib/domain/webhook-event';
import { deliverWebhook, webhookEventId, WebhookStore } from '../lib/webhooks';
import type { ActivityDeps } from './deps';

export interface DeliveryOutcome {
  webhook_id: string;
  outcome: 'delivered' | 'skipped';
  /** The receiver's HTTP status, when delivered. */
  status?: number;
  /** Why nothing was sent, when skipped. */
  reason?: string;
}

/** Sends a job's end to one subscription, as it stands now: one deleted or unsubscribed meanwhile is skipped. */
export function createWebhookActivities(deps: ActivityDeps) {
  const store = new WebhookStore(deps.es, deps.indices.webhooks, deps.config.CAIRN_ALLOW_PRIVATE_URLS);

  async function deliverJobEvent(tenant: string, webhookId: string, event: WebhookEvent, job: JobProgress, runId: string): Promise<DeliveryOutcome> {
    const hook = await store.stored(tenant, webhookId);
    if (!hook) return { webhook_id: webhookId, outcome: 'skipped', reason: 'the webhook was deleted' };
    if (!hook.events.includes(event)) return { webhook_id: webhookId, outcome: 'skipped', reason: `no longer subscribed to ${event}` };
    const payload = { type: event, timestamp: job.finished_at ?? job.updated_at, data: job };
    const { status } = await deliverWebhook(hook, webhookEventId(tenant, job.job_id, runId, event), payload, deps.config.CAIRN_ALLOW_PRIVATE_URLS);
    return { webhook_id: webhookId, outcome: 'delivered', status };
  }

  return { deliverJobEvent };
}
