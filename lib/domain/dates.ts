import * as chrono from 'chrono-node';
import { z } from 'zod';

/**
 * A date as callers write it → a Date. ISO 8601 first; then the forms conversation datasets and
 * vendors use ("1:56 pm on 8 May, 2023"), read by chrono-node in UTC so the result never depends on
 * the server's time zone. Undefined when nothing in the text is a date.
 */
export function parseLooseDate(value: string | undefined): Date | undefined {
  if (!value?.trim()) return undefined;
  const iso = Date.parse(value);
  if (!Number.isNaN(iso)) return new Date(iso);
  return chrono.parseDate(value, { instant: new Date(), timezone: 'UTC' }) ?? undefined;
}

/** The ISO 8601 form of a loose date, or undefined when it is not one. */
export const isoDate = (value: string | undefined) => parseLooseDate(value)?.toISOString();

/**
 * A date field at the ingest boundary: any readable form in, ISO 8601 out. Elasticsearch maps these
 * fields as `date`, so a free-form string would otherwise fail every index attempt of an accepted job.
 */
export const LooseDate = z.string().transform((value, context) => {
  const iso = isoDate(value);
  if (!iso) {
    context.addIssue({ code: 'custom', message: `"${value.slice(0, 80)}" is not a date (use ISO 8601, e.g. 2023-05-08T13:56:00Z)` });
    return z.NEVER;
  }
  return iso;
});
