import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CairnError, conflict, notFound, upstreamFailure } from '../errors';
import { JobKindAttribute, TenantAttribute } from '../temporal/search-attributes';
import { within } from '../promises';
import { backfillWorkflowId, newBackfillId, PUBLIC_ID } from './ids';
import { BackfillProgress, toWorkflowInput, type BackfillRequest } from './request';

export const BACKFILL_WORKFLOW = 'backfillWorkflow';
export const BACKFILL_PROGRESS_QUERY = 'backfillProgress';

export interface StartedBackfill {
  id: string;
  workflowId: string;
}

/** How long a progress read waits for a worker to answer its query. */
const QUERY_BUDGET_MS = 5_000;

/** The workflow's progress query, or a failure saying no worker answered within `ms`. */
function queryWithin(handle: WorkflowHandle, ms: number): Promise<BackfillProgress> {
  return within(handle.query<BackfillProgress>(BACKFILL_PROGRESS_QUERY), ms, () => {
    throw Object.assign(new Error(`no worker answered its progress query within ${ms / 1000} s: is one running (npm run dev, or npm run start:worker)?`), { name: 'QueryTimeout' });
  });
}

/** The progress a failed backfill put in its failure's details (backfills since this change do). */
function progressIn(error: unknown): BackfillProgress | undefined {
  let cause: unknown = error;
  for (let depth = 0; cause && depth < 5; depth++) {
    const details = (cause as { details?: unknown[] }).details;
    const parsed = BackfillProgress.safeParse(details?.[0]);
    if (parsed.success) return parsed.data;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * 409 while a reindex runs (on demand or a schedule's): the quick answer. The reindex itself refuses to
 * build what another is building (activities/backfill-reindex.ts), which visibility's lag cannot race.
 */
export async function refuseWhileReindexing(temporal: Client, taskQueue: string): Promise<void> {
  const { count } = await temporal.workflowService.countWorkflowExecutions({
    namespace: temporal.options.namespace,
    query: `TaskQueue = "${taskQueue.replace(/["\\]/g, '')}" AND CairnJobKind = "backfill:reindex" AND ExecutionStatus = "Running"`,
  });
  if (Number(count ?? 0) > 0) throw conflict('a reindex is already running: wait for it to finish');
}

/** Starts backfills on demand and reads their progress from the running workflow. */
export class BackfillRuns {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  async start(tenant: string, request: BackfillRequest): Promise<StartedBackfill> {
    // Two reindexes at once would both copy into the next index version and swap the same aliases.
    if (request.backfill === 'reindex') await refuseWhileReindexing(this.temporal, this.taskQueue);
    // A reindex has one id per deployment: Temporal itself refuses a second one while one runs, where
    // the count above could race (and visibility lags).
    const id = request.backfill === 'reindex' ? `bf_${createHash('sha256').update(`reindex\n${this.taskQueue}`).digest('hex').slice(0, 16)}` : newBackfillId();
    const workflowId = backfillWorkflowId(tenant, id);
    await this.temporal.workflow.start(BACKFILL_WORKFLOW, {
      taskQueue: this.taskQueue,
      workflowId,
      args: [toWorkflowInput(tenant, request)],
      typedSearchAttributes: [
        { key: TenantAttribute, value: tenant },
        { key: JobKindAttribute, value: `backfill:${request.backfill}` },
      ],
    }).catch((error) => {
      if (error instanceof WorkflowExecutionAlreadyStartedError) throw conflict('a reindex is already running: wait for it to finish');
      throw error;
    });
    return { id, workflowId };
  }

  /**
   * Progress of a backfill (on demand or a schedule's run); not found for another tenant's id. A
   * completed one answers from its result (no worker needed); others from the workflow's query, which
   * needs a worker polling: without one, a 503 saying so.
   */
  async progress(tenant: string, id: string): Promise<BackfillProgress> {
    const handle = this.handle(tenant, id);
    try {
      const { status } = await handle.describe();
      if (status.name === 'COMPLETED') return await handle.result();
      // A failed one carries its last progress in its failure (since it did): no worker needed either.
      if (status.name === 'FAILED') {
        const carried = await handle.result().then(
          () => undefined,
          (error) => progressIn(error),
        );
        if (carried) return carried;
      }
      const progress = await queryWithin(handle, QUERY_BUDGET_MS);
      // Ended from outside (terminated, timed out): its last state still says running.
      if (['TERMINATED', 'TIMED_OUT'].includes(status.name) && progress.status === 'running') {
        return { ...progress, status: 'failed', errors: [...progress.errors, { item: progress.phase, message: `the backfill was ${status.name.toLowerCase().replace('_', ' ')}` }] };
      }
      return progress;
    } catch (error) {
      throw this.explained(error, id);
    }
  }

  /** Cancels a running backfill (409 when it is not running); its ingest jobs are left to finish. */
  async cancel(tenant: string, id: string): Promise<void> {
    const handle = this.handle(tenant, id);
    try {
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') throw conflict(`backfill ${id} is ${description.status.name.toLowerCase()}, not running`);
      // A reindex moves every tenant's memories and swaps the aliases: stopped half way it would leave a
      // half-filled index version behind for the next one. It runs to its end.
      if (description.typedSearchAttributes.get(JobKindAttribute) === 'backfill:reindex') throw conflict('a reindex cannot be cancelled: it runs to its end');
      await handle.cancel();
    } catch (error) {
      throw this.explained(error, id);
    }
  }

  private handle(tenant: string, id: string) {
    if (!PUBLIC_ID.test(id)) throw notFound(`backfill ${id}`);
    return this.temporal.workflow.getHandle(backfillWorkflowId(tenant, id));
  }

  private explained(error: unknown, id: string): unknown {
    if (error instanceof WorkflowNotFoundError || (error as { name?: string }).name === 'WorkflowNotFoundError') return notFound(`backfill ${id}`);
    if (error instanceof CairnError) return error;
    // A query needs a worker to answer it: none polling, none answering in time, or the workflow's task
    // failing on the worker (its error is in the Temporal UI). Each is a 503 saying which.
    const message = [error, (error as { cause?: unknown })?.cause].map((e) => String((e as Error | undefined)?.message ?? '')).join(' ');
    if (/no poller seen/i.test(message)) return upstreamFailure(`no worker is polling for backfills, so backfill ${id}'s progress cannot be read: start one (npm run dev, or npm run start:worker) and ask again`);
    if (/Workflow Task in failed state/i.test(message)) return upstreamFailure(`backfill ${id}'s workflow task is failing on the worker, so its progress cannot be read now (the Temporal UI shows why): ${message.trim().slice(0, 300)}`);
    if (/query/i.test(message) || (error as { name?: string })?.name === 'QueryTimeout') return upstreamFailure(`backfill ${id}'s progress could not be read from its workflow: ${message.trim().slice(0, 300)}`);
    return error;
  }

  async result(tenant: string, id: string): Promise<BackfillProgress> {
    return this.temporal.workflow.getHandle(backfillWorkflowId(tenant, id)).result();
  }
}
