import { randomBytes } from 'node:crypto';

/**
 * Backfill workflow and schedule ids embed the tenant, like ingest workflow ids, so one tenant can
 * never address another tenant's backfill or schedule: every lookup is built from the caller's tenant.
 */
export const backfillWorkflowId = (tenant: string, id: string) => `backfill/${tenant}/${id}`;
export const backfillScheduleId = (tenant: string, id: string) => `backfill-schedule/${tenant}/${id}`;

export const newBackfillId = () => `bf_${randomBytes(8).toString('hex')}`;
export const newScheduleId = () => `sch_${randomBytes(8).toString('hex')}`;

/** The public id of a backfill or schedule: what follows the tenant, or undefined for another tenant's. */
export function publicIdOf(fullId: string, prefix: 'backfill' | 'backfill-schedule', tenant: string): string | undefined {
  const head = `${prefix}/${tenant}/`;
  return fullId.startsWith(head) ? fullId.slice(head.length) : undefined;
}

/** Public ids are ours (`bf_…`, `sch_…`, or a scheduled run's `sch_…-<timestamp>`); nothing else is looked up. */
export const PUBLIC_ID = /^(bf|sch)_[a-f0-9]{16}(-[0-9A-Za-z:.\-]+)?$/;
