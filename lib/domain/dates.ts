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

/** 2024-02-30 or T25:00 would roll over into another date when read: refused instead. */
function onTheCalendar(value: string): boolean {
  const [, day, time] = ISO_8601.exec(value) ?? [];
  const [year, month, date] = (day ?? '').split('-').map(Number);
  const calendar = new Date(Date.UTC(year!, month! - 1, date!));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month! - 1 || calendar.getUTCDate() !== date) return false;
  const [hours, minutes, seconds] = (time ?? '00:00').split(':').map(Number);
  return hours! <= 23 && minutes! <= 59 && (seconds ?? 0) < 60;
}

const ISO_8601 = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO 8601 date or timestamp, in any of the standard's usual forms (seconds optional, offset as Z,
 * ±hh:mm, ±hhmm or ±hh, or none: read as UTC, never as the server's zone) → ISO 8601 in UTC.
 */
export const Iso8601Date = z
  .string()
  .max(64)
  .regex(ISO_8601, 'not an ISO 8601 date or timestamp (e.g. 2024-01-15 or 2024-01-15T10:30:00Z)')
  .refine(onTheCalendar, 'not a date on the calendar (month 01–12, a day the month has, hours 00–23, minutes and seconds 00–59)')
  .transform((value) => {
    const [, day, time, zone] = ISO_8601.exec(value)!;
    if (!time) return day!;
    const offset = !zone || zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
    return `${day}T${time}${offset}`;
  })
  .pipe(LooseDate);
