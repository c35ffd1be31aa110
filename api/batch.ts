import type { Response } from 'express';
import { withStatus } from './errors';
import { z } from 'zod';
import { CairnError, httpStatusOf } from '../lib/errors';

/** An item a batch did not accept, by its position in the request. */
export const BatchError = z.object({ index: z.number().int(), code: z.string(), message: z.string() });
export type BatchError = z.infer<typeof BatchError>;

const describe = (issues: z.core.$ZodIssue[]) => issues.map((issue) => `${issue.path.join('.') || '(item)'}: ${issue.message}`).join('; ');

/**
 * The status of a batch that accepted nothing: 503 when any item failed on an unavailable service (the
 * whole batch may be retried), the items' common status when they share one (e.g. 409: all
 * duplicates), else 400.
 */
export function nothingAcceptedStatus(errors: BatchError[]): number {
  const statuses = errors.map((error) => httpStatusOf(error.code));
  if (statuses.some((status) => status >= 500)) return 503;
  return statuses.length > 0 && statuses.every((status) => status === statuses[0]) ? statuses[0]! : 400;
}

/**
 * Answers a batch: `accepted` (201 or 202) when any item was, else the items' shared status, with
 * Retry-After when that is a 503 (a service was down), as every 503 carries.
 */
export function sendBatch<R>(res: Response, accepted: number, result: { results: R[]; errors: BatchError[] }): void {
  const status = result.results.length > 0 ? accepted : nothingAcceptedStatus(result.errors);
  withStatus(res, status).json({ results: result.results, errors: result.errors });
}

/**
 * Synap-style batch acceptance shared by every batch endpoint: every item is validated first; with
 * fail_fast one invalid item rejects the whole batch before any job starts, otherwise the valid
 * items are accepted and each invalid one is reported by index.
 */
export async function acceptBatch<S extends z.ZodType, R>(
  items: unknown[],
  failFast: boolean,
  schema: S,
  start: (item: z.infer<S>, index: number) => Promise<R>,
): Promise<{ rejected: boolean; results: (R & { index: number })[]; errors: BatchError[] }> {
  const errors: BatchError[] = [];
  const valid: { item: z.infer<S>; index: number }[] = [];
  items.forEach((raw, index) => {
    const parsed = schema.safeParse(raw);
    if (parsed.success) valid.push({ item: parsed.data, index });
    else errors.push({ index, code: 'validation_error', message: describe(parsed.error.issues) });
  });
  if (failFast && errors.length > 0) return { rejected: true, results: [], errors };
  const results: (R & { index: number })[] = [];
  // Sequential: each start is a blob write + a workflow start, and order keeps results readable.
  for (const { item, index } of valid) {
    try {
      results.push({ index, ...(await start(item, index)) });
    } catch (error) {
      // One item's failure must not hide the jobs already accepted in this batch.
      if (error instanceof CairnError) errors.push({ index, code: error.code, message: error.message });
      else errors.push({ index, code: 'upstream_failure', message: 'the item could not be accepted; retry it' });
    }
  }
  errors.sort((a, b) => a.index - b.index);
  return { rejected: false, results, errors };
}
