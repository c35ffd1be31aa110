import { ParentClosePolicy, startChild, workflowInfo } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { JobAnnouncement } from '../../activities/record-job';
import type { JobProgress } from '../../lib/domain/job';
import { eventOfJob } from '../../lib/domain/webhook-event';
import { JobKindAttribute, TenantAttribute } from '../../lib/temporal/search-attributes';
import { webhookDeliveryWorkflow } from '../webhooks';

/**
 * Announces the job's end to the webhooks its summary's writer named (histories before webhooks have
 * none, and replay without this step), as the summary tells it: what GET /v1/jobs/:id answers.
 */
export async function tell(job: JobProgress, announcement: JobAnnouncement | undefined): Promise<void> {
  if (announcement?.webhooks.length) await announce(announcement.job ?? job, announcement.webhooks);
}

/**
 * Starts the deliveries of a job's end to the tenant's webhooks, as a child workflow the job does not
 * wait for (ABANDON: it outlives the job, retrying a receiver that is down for days). Its id derives
 * from the job's run (a job id can run again: a failed Synap document re-sent), so a replay or a
 * retried summary starts it once, and each run's end is its own event.
 */
async function announce(job: JobProgress, webhooks: string[]): Promise<void> {
  const event = eventOfJob(job.status);
  if (!event) return;
  const { runId } = workflowInfo();
  try {
    await startChild(webhookDeliveryWorkflow, {
      workflowId: `webhooks/${job.tenant}/${job.job_id}/${runId}`,
      args: [{ tenant: job.tenant, event, webhooks, job, runId }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: TenantAttribute, value: job.tenant },
        { key: JobKindAttribute, value: 'webhook' },
      ],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}
