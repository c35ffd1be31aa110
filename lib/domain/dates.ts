import * as chrono from 'chrono-node';
import { z } from 'zod';

/**
 * A date as callers write it → a Date. ISO 8601 first; then the forms conversation datasets and
 * vendors use ("1:56 pm on 8 May, 2023"), read by chrono-node in UTC so the result never depends on
 * the server's time zone. Undefined when nothing in the text is a date.
 */
export function parseLooseDate(value: string | undefined): Date | undefined {
  const date = readLooseDate(value);
  return date && storable(date) ? date : undefined;
}

/**
 * Within the years Elasticsearch's `date` fields take (0000–9999, four digits, in UTC): "9999-12-31
 * 23:59-14:00" is year 10000 in UTC, which every index attempt of an accepted job would refuse.
 */
function storable(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= 0 && year <= 9999;
}

function readLooseDate(value: string | undefined): Date | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  // ISO 8601 without an offset is UTC here (Date.parse would read a timestamp in the server's zone).
  const iso = ISO_8601.exec(text);
  if (iso) {
    // 2024-02-30 would roll over into 1 March: refused, as Iso8601Date refuses it.
    if (!onTheCalendar(text)) return undefined;
    const [, day, time, zone] = iso;
    const parsed = Date.parse(time ? `${day}T${time}${zone ? normalisedOffset(zone) : 'Z'}` : `${day}T00:00:00Z`);
    return Number.isNaN(parsed) ? undefined : new Date(parsed);
  }
  if (zoneAfterItsTime(text)) {
    const parsed = Date.parse(text);
    if (!Number.isNaN(parsed)) return new Date(parsed);
  }
  return chrono.parseDate(text, { instant: new Date(), timezone: 'UTC' }) ?? undefined;
}

/**
 * The UTC offset (minutes) a date string states (Z is 0), or undefined: relative dates in a text
 * said at that time are days of that zone ("yesterday" at 08:00 in Tokyo is the Tokyo day before).
 */
export function statedOffsetMinutes(value: string | undefined): number | undefined {
  const zone = value ? ISO_8601.exec(value.trim())?.[3] : undefined;
  if (!zone) return undefined;
  if (zone.toUpperCase() === 'Z') return 0;
  const [hours, minutes] = normalisedOffset(zone).slice(1).split(':').map(Number);
  return (zone.startsWith('-') ? -1 : 1) * (hours! * 60 + minutes!);
}

/**
 * Whether a time states its zone after it (RFC 2822: "Mon, 08 May 2023 10:00:00 GMT"), which makes it
 * unambiguous; "8-May-2023" ends like an offset but is none.
 */
export function zoneAfterItsTime(text: string): boolean {
  return /\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:GMT|UTC|Z|[+-]\d{2}:?\d{2})$/i.test(text);
}

/** ±hh, ±hhmm or ±hh:mm → ±hh:mm (Z stays Z). */
function normalisedOffset(zone: string): string {
  if (zone.toUpperCase() === 'Z') return 'Z';
  return zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
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
    notADate(value, context);
    return z.NEVER;
  }
  return iso;
});

/**
 * The refinement of a date field kept as the caller wrote it (a turn's timestamp keeps its offset,
 * the speaker's zone): refused unless it reads as a date Elasticsearch can store.
 */
export function readableDate(value: string, context: z.RefinementCtx): void {
  if (isoDate(value) === undefined) notADate(value, context);
}

function notADate(value: string, context: z.RefinementCtx): void {
  context.addIssue({ code: 'custom', message: `"${value.slice(0, 80)}" is not a date Cairn can store (use ISO 8601, e.g. 2023-05-08T13:56:00Z; years 0000–9999 in UTC)` });
}

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
    const offset = zone ? normalisedOffset(zone) : 'Z';
    return `${day}T${time}${offset}`;
  })
  .pipe(LooseDate);
