import type { JobProgress } from './job';

/** The events a webhook can subscribe to: a job's end. Safe to import from workflow code. */
export const WEBHOOK_EVENTS = ['job.completed', 'job.failed', 'job.cancelled'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const eventOfJob = (status: JobProgress['status']): WebhookEvent | undefined =>
  status === 'completed' ? 'job.completed' : status === 'failed' ? 'job.failed' : status === 'cancelled' ? 'job.cancelled' : undefined;
