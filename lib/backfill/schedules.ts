import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleOptions,
  type ScheduleSummary,
} from '@temporalio/client';
import { z } from 'zod';
import { badInput, conflict, notFound } from '../errors';
import { JobKindAttribute, TenantAttribute } from '../temporal/search-attributes';
import { backfillScheduleId, backfillWorkflowId, newScheduleId, publicIdOf, PUBLIC_ID } from './ids';
import { BackfillRequest, toWorkflowInput, type ScheduleRequest } from './request';
import { BACKFILL_WORKFLOW, refuseWhileReindexing } from './runs';

/** A schedule as the API shows it. */
export const ScheduleView = z.object({
  id: z.string(),
  backfill: z.string(),
  every: z.string().optional(),
  cron: z.string().optional(),
  paused: z.boolean(),
  note: z.string().optional(),
  request: BackfillRequest,
  next_run_at: z.string().optional(),
  recent_runs: z.array(z.object({ backfill_id: z.string().optional(), workflow_id: z.string(), scheduled_at: z.string(), started_at: z.string() })),
  created_at: z.string().optional(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;

/**
 * Backfills on Temporal Schedules: real schedules, visible with their runs in the Temporal UI. The
 * schedule id embeds the tenant, and every call rebuilds it from the caller's tenant.
 */
export class BackfillSchedules {
  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  async create(tenant: string, request: ScheduleRequest): Promise<ScheduleView> {
    const id = newScheduleId();
    const { every, cron, paused, note, ...backfillFields } = request;
    const backfill = BackfillRequest.parse(backfillFields);
    await this.createSchedule({
      scheduleId: backfillScheduleId(tenant, id),
      spec: every ? { intervals: [{ every: every as `${number}m` }] } : { cronExpressions: [cron!] },
      action: {
        type: 'startWorkflow',
        workflowType: BACKFILL_WORKFLOW,
        // Temporal appends the scheduled time, so each run is `backfill/<tenant>/<id>-<time>`.
        workflowId: backfillWorkflowId(tenant, id),
        taskQueue: this.taskQueue,
        args: [toWorkflowInput(tenant, backfill)],
        typedSearchAttributes: [
          { key: TenantAttribute, value: tenant },
          { key: JobKindAttribute, value: `backfill:${backfill.backfill}` },
        ],
      },
      // A backfill still running when the next one is due keeps going; the due one is skipped.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      state: { paused, note: note ?? `cairn ${backfill.backfill} backfill` },
      // created_at in the memo too: a listing's summaries carry no creation time (a description does).
      memo: { request: backfill, every, cron, created_at: new Date().toISOString() },
      typedSearchAttributes: [{ key: TenantAttribute, value: tenant }],
    });
    const description = await this.describe(tenant, id);
    // A cron Temporal takes but that names no real time ("0 3 31 2 *", 31 February) would never run.
    if (description.info.nextActionTimes.length === 0) {
      await this.delete(tenant, id);
      throw badInput(`invalid schedule: ${cron ?? every} never comes round (no next run)`);
    }
    return toView(id, tenant, description);
  }

  /** Temporal judges the cron expression (its dialect): one it refuses is the caller's bad input. */
  private async createSchedule(options: ScheduleOptions): Promise<void> {
    try {
      await this.temporal.schedule.create(options);
    } catch (error) {
      // The client turns the server's INVALID_ARGUMENT for the spec into a TypeError carrying the
      // server's reason (ScheduleClient.rethrowGrpcError); any other TypeError is a fault here, not the
      // caller's bad input.
      if (error instanceof TypeError && error.stack?.includes('rethrowGrpcError')) throw badInput(`invalid schedule: ${error.message}`);
      throw error;
    }
  }

  async list(tenant: string): Promise<ScheduleView[]> {
    const views: ScheduleView[] = [];
    // The tenant search attribute narrows the listing; the id prefix is what actually guarantees isolation.
    for await (const summary of this.temporal.schedule.list({ query: `CairnTenant = '${tenant.replace(/'/g, '')}'` })) {
      const id = publicIdOf(summary.scheduleId, 'backfill-schedule', tenant);
      if (id) views.push(toView(id, tenant, summary));
    }
    return views.sort((a, b) => (a.created_at ?? '').localeCompare(b.created_at ?? ''));
  }

  async get(tenant: string, id: string): Promise<ScheduleView> {
    return toView(id, tenant, await this.describe(tenant, id));
  }

  async pause(tenant: string, id: string, note?: string): Promise<ScheduleView> {
    await this.call(tenant, id, (handle) => handle.pause(note ?? 'paused through the Cairn API'));
    return this.get(tenant, id);
  }

  async unpause(tenant: string, id: string, note?: string): Promise<ScheduleView> {
    await this.call(tenant, id, (handle) => handle.unpause(note ?? 'unpaused through the Cairn API'));
    return this.get(tenant, id);
  }

  /**
   * Runs the backfill now, whatever the schedule's timing or pause state says. Refused (409) while a run
   * of it is still going, which the trigger would otherwise skip in silence (the schedule's overlap
   * policy), and for a reindex while any reindex runs.
   */
  async trigger(tenant: string, id: string): Promise<void> {
    const description = await this.describe(tenant, id);
    const running = description.info.runningActions[0];
    if (running) throw conflict(`a run of schedule ${id} is still running (${publicIdOf(running.workflow.workflowId, 'backfill', tenant) ?? running.workflow.workflowId}): wait for it to end`);
    if ((description.memo as { request?: BackfillRequest } | undefined)?.request?.backfill === 'reindex') await refuseWhileReindexing(this.temporal, this.taskQueue);
    await this.call(tenant, id, (handle) => handle.trigger(ScheduleOverlapPolicy.SKIP));
  }

  async delete(tenant: string, id: string): Promise<void> {
    await this.call(tenant, id, (handle) => handle.delete());
  }

  private async describe(tenant: string, id: string): Promise<ScheduleDescription> {
    return this.call(tenant, id, (handle) => handle.describe());
  }

  private async call<T>(tenant: string, id: string, fn: (handle: ScheduleHandle) => Promise<T>): Promise<T> {
    if (!PUBLIC_ID.test(id) || !id.startsWith('sch_')) throw notFound(`schedule ${id}`);
    try {
      return await fn(this.temporal.schedule.getHandle(backfillScheduleId(tenant, id)));
    } catch (error) {
      if (error instanceof ScheduleNotFoundError || (error as { name?: string }).name === 'ScheduleNotFoundError') {
        throw notFound(`schedule ${id}`);
      }
      throw error;
    }
  }
}

function toView(id: string, tenant: string, schedule: ScheduleSummary | ScheduleDescription): ScheduleView {
  const memo = (schedule.memo ?? {}) as { request?: BackfillRequest; every?: string; cron?: string; created_at?: string };
  const request = memo.request ?? ({ backfill: 'reembed' } as BackfillRequest);
  const description = schedule as Partial<ScheduleDescription>;
  return {
    id,
    backfill: request.backfill,
    every: memo.every,
    cron: memo.cron,
    paused: schedule.state.paused,
    note: schedule.state.note,
    request,
    // A paused schedule has no next run, whatever time its spec would name next.
    next_run_at: schedule.state.paused ? undefined : schedule.info.nextActionTimes[0]?.toISOString(),
    recent_runs: schedule.info.recentActions.map((action) => ({
      workflow_id: action.action.workflow.workflowId,
      backfill_id: publicIdOf(action.action.workflow.workflowId, 'backfill', tenant),
      scheduled_at: action.scheduledAt.toISOString(),
      started_at: action.takenAt.toISOString(),
    })),
    // The memo's, which a listing's summaries carry too (schedules made before it kept one: Temporal's).
    created_at: memo.created_at ?? description.info?.createdAt?.toISOString(),
  };
}
