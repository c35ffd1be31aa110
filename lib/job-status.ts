import { QueryRejectedError, ServiceError, WorkflowClient, type Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { initialProgress } from './domain/initial-progress';
import { isFinalStatus, JobProgress } from './domain/job';
import { wireScopeOf } from './domain/scope';
import { upstreamFailure } from './errors';

// temporal.api.enums.v1.WorkflowExecutionStatus values (kept here to avoid a direct proto dependency).
const COMPLETED = 2;
const CANCELED = 4;
const CLOSED_NAMES: Record<number, string> = { 2: 'completed', 3: 'failed', 4: 'cancelled', 5: 'terminated', 6: 'continued as new', 7: 'timed out' };

/** Summaries and query answers reduced to the one wire shape, whichever path answered. */
export const canonicalProgress = (progress: JobProgress): JobProgress => {
  const parsed = JobProgress.safeParse(progress).data ?? progress;
  return { ...parsed, scope: wireScopeOf(parsed.scope) };
};

/**
 * Where a job's status comes from. A finished job wrote its summary before its workflow closed, so
 * the summary answers it (a realtime read by id); a query would replay the closed workflow's history
 * on a worker — slow, and stuck when no worker runs. Only open workflows are queried, with the query
 * refused by the server for closed ones; a closed run without a summary (terminated from outside)
 * answers from its result or its input.
 */
/** How many open jobs' last answered progress a process keeps (a few KB each). */
const LAST_ANSWERS = 2_000;

export class JobStatusReader {
  private readonly openOnly: WorkflowClient;
  /**
   * The last progress each open job's query answered here, oldest first: a poll whose query runs past
   * the budget (the worker busy in one long task) answers it, not counts back at zero.
   */
  private readonly lastAnswers = new Map<string, JobProgress>();

  constructor(temporal: Client) {
    this.openOnly = new WorkflowClient({
      connection: temporal.connection,
      namespace: temporal.options.namespace,
      dataConverter: temporal.options.dataConverter,
      interceptors: temporal.options.interceptors.workflow,
      queryRejectCondition: 'NOT_OPEN',
    });
  }

  isFinal(progress: JobProgress | undefined): progress is JobProgress {
    return progress !== undefined && isFinalStatus(progress.status);
  }

  /** Live progress of an open workflow; for a closed one without a summary, what its history says. */
  async live(workflowId: string, summaryUnread?: unknown): Promise<JobProgress> {
    const handle = this.openOnly.getHandle(workflowId);
    try {
      const progress = canonicalProgress(await this.openOnly.withDeadline(Date.now() + QUERY_BUDGET_MS, () => handle.query<JobProgress>('status')));
      this.remember(workflowId, progress);
      return await withRetrying(handle, progress);
    } catch (error) {
      if (error instanceof QueryRejectedError) {
        this.lastAnswers.delete(workflowId);
        // Ended, with its record unread (Elasticsearch not answering): the record says what happened,
        // not the input, which would say it ended before recording anything.
        if (summaryUnread && Number(error.status) !== COMPLETED) {
          throw upstreamFailure(`the job has ended, and its record cannot be read now: ${(summaryUnread as Error)?.message ?? summaryUnread}`);
        }
        return this.closed(handle, Number(error.status));
      }
      // Past the budget, or any other failure of the query itself while the workflow is open (seen
      // once in a full test run: a query buffered behind a workflow task failed with a generic
      // gRPC error): answer from the input. Not found is its own error and still answers 404; with
      // the server down, the history read fails too, and so does the poll.
      if (isDeadlineExceeded(error) || error instanceof ServiceError) return this.busy(handle);
      throw error;
    }
  }

  /**
   * The worker answers queries between workflow tasks; a small job runs its stages as local
   * activities inside one task, so a query waits for the job. Past the budget the poll answers from
   * the workflow's input instead of hanging: `running` once a worker has taken the job's first task,
   * `queued` while none has (no worker polling, or all busy), so an outage does not look like
   * progress — unless a query answered this process before: then that answer, so a poll never sees
   * the job's counts go back. Stage details come with the next poll.
   */
  private async busy(handle: WorkflowHandle): Promise<JobProgress> {
    const known = this.lastAnswers.get(handle.workflowId);
    if (known) return known;
    const [input, description] = await both(startInputOf(handle), handle.describe());
    const now = new Date().toISOString();
    return canonicalProgress({ ...initialProgress(input, now), status: taken(description.raw) ? 'running' : 'queued', updated_at: now });
  }

  private remember(workflowId: string, progress: JobProgress): void {
    this.lastAnswers.delete(workflowId);
    this.lastAnswers.set(workflowId, progress);
    if (this.lastAnswers.size > LAST_ANSWERS) this.lastAnswers.delete(this.lastAnswers.keys().next().value!);
  }

  private async closed(handle: WorkflowHandle, status: number): Promise<JobProgress> {
    if (status === COMPLETED) return canonicalProgress(await handle.result());
    // The input from the first event and the closing time from the execution's description: a
    // long job's history can hold thousands of events, none of the others needed here.
    const [input, description] = await both(startInputOf(handle), handle.describe());
    const closedAt = (description.closeTime ?? new Date()).toISOString();
    const how = CLOSED_NAMES[status] ?? 'closed';
    return canonicalProgress({
      ...initialProgress(input, closedAt),
      status: status === CANCELED ? 'cancelled' : 'failed',
      errors: [{ stage: 'workflow', code: how.replace(/ /g, '_'), message: `the job's workflow was ${how} before it recorded its outcome` }],
      finished_at: closedAt,
    });
  }
}

/**
 * The input a job's workflow was started with, reading one page of one event: a long job's history
 * can hold thousands of events, and only the first carries the input.
 */
export async function startInputOf(handle: WorkflowHandle): Promise<IngestWorkflowInput> {
  const { history } = await handle.client.workflowService.getWorkflowExecutionHistory({
    namespace: handle.client.options.namespace,
    execution: { workflowId: handle.workflowId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw upstreamFailure(`the input of workflow ${handle.workflowId} is no longer available`);
  return defaultPayloadConverter.fromPayload<IngestWorkflowInput>(payload);
}

// temporal.api.enums.v1.PendingWorkflowTaskState.STARTED
const WORKFLOW_TASK_STARTED = 2;

/**
 * Whether a worker has taken the workflow's first task: its history holds more than the start and
 * the first task's scheduling, or that task is running now.
 */
function taken(raw: { workflowExecutionInfo?: { historyLength?: unknown } | null; pendingWorkflowTask?: { state?: unknown } | null }): boolean {
  return Number(raw.workflowExecutionInfo?.historyLength ?? 0) > 2 || Number(raw.pendingWorkflowTask?.state) === WORKFLOW_TASK_STARTED;
}

/** A job whose progress has not moved for this long is asked why (withRetrying). */
const STILL_FOR_MS = 10_000;

/**
 * The progress, and, for a job that has not moved for STILL_FOR_MS, the activities Temporal is retrying
 * with their last failure: a provider that is down or a model change awaiting its reindex held jobs at
 * `running` with no word of why, outside the worker's logs and the Temporal UI.
 */
async function withRetrying(handle: WorkflowHandle, progress: JobProgress): Promise<JobProgress> {
  if (isFinalStatus(progress.status) || Date.now() - Date.parse(progress.updated_at) < STILL_FOR_MS) return progress;
  const description = await handle.describe().catch(() => undefined);
  const pending = (description?.raw.pendingActivities ?? []).filter((activity) => Number(activity.attempt ?? 0) > 1 && activity.lastFailure?.message);
  if (pending.length === 0) return progress;
  return {
    ...progress,
    retrying: pending.map((activity) => ({
      activity: activity.activityType?.name ?? 'activity',
      attempt: Number(activity.attempt),
      last_failure: String(activity.lastFailure!.message).slice(0, 1000),
      next_attempt_at: timestampOf(activity.nextAttemptScheduleTime as never),
    })),
  };
}

/** How long a status poll waits for the workflow's own answer. */
const QUERY_BUDGET_MS = 1000;

// gRPC's DEADLINE_EXCEEDED status code, on the error or (wrapped by the client) on its cause.
const DEADLINE_EXCEEDED = 4;
const isDeadlineExceeded = (error: unknown) =>
  [error, (error as { cause?: unknown })?.cause].some((e) => (e as { code?: number } | undefined)?.code === DEADLINE_EXCEEDED);

export function timestampOf(value: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!value?.seconds) return undefined;
  return new Date(Number(String(value.seconds)) * 1000 + Math.floor((value.nanos ?? 0) / 1e6)).toISOString();
}

/**
 * Two calls side by side, failing with the first failure only once both have ended: a call still
 * retrying against a server that is down must not outlive the request that made it.
 */
export async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
  return [first.value, second.value];
}
