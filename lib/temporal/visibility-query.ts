import { defaultPayloadConverter } from '@temporalio/common';
import { z } from 'zod';
import { DocumentType, Format, SourceKind } from '../domain/ingest';
import { JobStatus, type JobProgress } from '../domain/job';

/*
 * How a listing of jobs speaks to Temporal visibility: its filters as a visibility query over the
 * Cairn search attributes, and a run's status and fields read back.
 */

/** Filters a listing accepts; each maps to one Cairn search attribute in Temporal visibility. */
export const JobFilters = z.object({
  status: JobStatus.optional(),
  format: Format.optional(),
  kind: SourceKind.optional(),
  document_type: DocumentType.optional(),
  /** The API surface that took the job: native, crosmos, supermemory, tex, memsolus, synap, backfill. */
  surface: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a surface name: lower-case letters, digits, _ and - (e.g. native, synap)').optional(),
});
export type JobFilters = z.infer<typeof JobFilters>;

// temporal.api.enums.v1.WorkflowExecutionStatus values (kept here to avoid a direct proto dependency).
const Status = {
  WORKFLOW_EXECUTION_STATUS_COMPLETED: 2,
  WORKFLOW_EXECUTION_STATUS_FAILED: 3,
  WORKFLOW_EXECUTION_STATUS_CANCELED: 4,
  WORKFLOW_EXECUTION_STATUS_TERMINATED: 5,
  WORKFLOW_EXECUTION_STATUS_TIMED_OUT: 7,
} as const;

/** Visibility's execution status is the truth for closed runs; the CairnStatus attribute for open ones. */
export function statusOf(executionStatus: number | null | undefined, attribute: string | undefined): JobProgress['status'] {
  switch (executionStatus) {
    case Status.WORKFLOW_EXECUTION_STATUS_COMPLETED:
      return 'completed';
    case Status.WORKFLOW_EXECUTION_STATUS_CANCELED:
      return 'cancelled';
    case Status.WORKFLOW_EXECUTION_STATUS_FAILED:
    case Status.WORKFLOW_EXECUTION_STATUS_TERMINATED:
    case Status.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
      return 'failed';
    default:
      return attribute === 'running' ? 'running' : 'queued';
  }
}

/** Each status as statusOf reads it: closed runs by their execution status (a run terminated from outside never wrote its own), open ones by CairnStatus. */
const STATUS_CLAUSES: Record<JobProgress['status'], string> = {
  completed: `ExecutionStatus = "Completed"`,
  cancelled: `ExecutionStatus = "Canceled"`,
  failed: `ExecutionStatus IN ("Failed", "Terminated", "TimedOut")`,
  running: `(ExecutionStatus = "Running" AND CairnStatus = "running")`,
  queued: `(ExecutionStatus = "Running" AND CairnStatus != "running")`,
};

/** A string literal of a visibility query: quotes, backslashes and control characters (a NUL ends SQLite's parse) dropped. */
const quote = (value: string) => `"${value.replace(/["\\\u0000-\u001f\u007f]/g, '')}"`;

/**
 * The task queue scopes a listing to this deployment: several Cairn deployments (or test runs) can
 * share a Temporal namespace, each with its own indices and queue.
 */
export function visibilityQuery(tenant: string, filters: JobFilters, taskQueue?: string): string {
  const clauses = [`CairnTenant = ${quote(tenant)}`, `CairnJobKind = "ingest"`];
  if (taskQueue) clauses.push(`TaskQueue = ${quote(taskQueue)}`);
  if (filters.status) clauses.push(STATUS_CLAUSES[filters.status]);
  if (filters.format) clauses.push(`CairnFormat = ${quote(filters.format)}`);
  if (filters.kind) clauses.push(`CairnSourceKind = ${quote(filters.kind)}`);
  if (filters.document_type) clauses.push(`CairnDocumentType = ${quote(filters.document_type)}`);
  if (filters.surface) clauses.push(`CairnSurface = ${quote(filters.surface)}`);
  return clauses.join(' AND ');
}

/** A run's memo or search attributes, as visibility hands them back (payloads), read as values. */
export function decodeFields(fields: Record<string, Parameters<typeof defaultPayloadConverter.fromPayload>[0]> | null | undefined): Record<string, unknown> {
  const decoded: Record<string, unknown> = {};
  for (const [key, payload] of Object.entries(fields ?? {})) {
    try {
      decoded[key] = defaultPayloadConverter.fromPayload(payload);
    } catch {
      // An attribute written by another tool in an unknown encoding is skipped, not fatal.
    }
  }
  return decoded;
}
