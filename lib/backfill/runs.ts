import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { conflict, notFound, upstreamFailure } from '../errors';
import { JobKindAttribute, TenantAttribute } from '../temporal/search-attributes';
import { backfillWorkflowId, newBackfillId, PUBLIC_ID } from './ids';
import { toWorkflowInput, type BackfillProgress, type BackfillRequest } from './request';

export const BACKFILL_WORKFLOW = 'backfillWorkflow';
export const BACKFILL_PROGRESS_QUERY = 'backfillProgress';

export interface StartedBackfill {
  id: string;
  workflowId: string;
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
      const progress = await handle.query<BackfillProgress>(BACKFILL_PROGRESS_QUERY);
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
    // A query needs a worker on the task queue; the server says so at once rather than wait.
    if (/no poller seen/i.test(String((error as Error)?.message))) return upstreamFailure('no worker is polling for backfills: start one (npm run worker) and ask again');
    return error;
  }

  async result(tenant: string, id: string): Promise<BackfillProgress> {
    return this.temporal.workflow.getHandle(backfillWorkflowId(tenant, id)).result();
  }
}
