import * as chrono from 'chrono-node';
import { z } from 'zod';
import { badInput } from '../errors';
import { isoDate, statedOffsetMinutes, zoneAfterItsTime } from './dates';

/**
 * When each turn of a write was said, as Tex reads a turn's timestamp: one that states its zone as
 * written; any other (natural language such as "yesterday 3pm", or a time without an offset) in the
 * write's `timezone`, UTC unless named, against the moment the write arrived; none, the arrival itself.
 */

const OFFSET = /^[+-](?:[01]\d|2[0-3]):[0-5]\d$/;

/** An IANA zone ("Europe/Berlin") or a fixed offset ("+05:30"), as Tex's `timezone` takes. */
export const TimeZone = z
  .string()
  .max(64)
  .refine((zone) => OFFSET.test(zone) || knownZone(zone), 'not a time zone: send an IANA name such as "Europe/Berlin", or an offset such as "+05:30"');

function knownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** How one turn's time was obtained (the SDK's TurnTime). */
export interface TurnTime {
  turn_index: number;
  original: string | null;
  timestamp: string;
  timestamp_ms: number;
  /** explicit: a time; relative: read against the arrival; arrival: the turn named none. */
  source: 'explicit' | 'relative' | 'arrival';
  uncertain: boolean;
}

/** A turn's time as read, and the timestamp its turn is stored with (its zone kept, so relative words in its text read in it). */
export interface ReadTime {
  time: TurnTime;
  stored: string | undefined;
}

/** The zone's offset from UTC at an instant, in minutes. */
function offsetAt(zone: string, instant: Date): number {
  if (OFFSET.test(zone)) return (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' }).formatToParts(instant).find((part) => part.type === 'timeZoneName')?.value;
  const [, sign, hours, minutes] = /GMT([+-])(\d{2}):(\d{2})/.exec(name ?? '') ?? [];
  return sign ? (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes)) : 0;
}

/** The instant as the zone's wall clock with its offset: 2026-05-09T15:00:00.000+02:00. */
function zonedIso(instant: Date, offset: number): string {
  if (offset === 0) return instant.toISOString();
  const wall = new Date(instant.getTime() + offset * 60_000).toISOString().slice(0, -1);
  const hhmm = `${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
  return `${wall}${offset < 0 ? '-' : '+'}${hhmm}`;
}

/** chrono in the zone, its offset taken at the date read (a summer date of a winter write keeps summer time). */
function readInZone(text: string, zone: string, reference: Date): Date | undefined {
  const first = chrono.parseDate(text, { instant: reference, timezone: offsetAt(zone, reference) });
  if (!first) return undefined;
  const offset = offsetAt(zone, first);
  return offset === offsetAt(zone, reference) ? first : (chrono.parseDate(text, { instant: reference, timezone: offset }) ?? first);
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}(?:[T ]|$)/;

/** The instant the zone's clock shows this wall time (given as if it were UTC). */
function wallClockIn(zone: string, wall: Date): Date {
  const guess = new Date(wall.getTime() - offsetAt(zone, wall) * 60_000);
  return new Date(wall.getTime() - offsetAt(zone, guess) * 60_000);
}

/** A year and a day away, at another time of day: what a date that does not depend on the reference reads the same against. */
const ELSEWHERE_MS = (400 * 24 + 1) * 3_600_000 + 7 * 60_000;

/** `[field, index]`: where the request holds the turn (`['turns', 2]`), for an error naming it. */
export function readTurnTime(original: string | undefined, [field, index]: [string, number], zone: string | undefined, arrival: Date): ReadTime {
  const at = (instant: Date, source: TurnTime['source']): TurnTime => ({
    turn_index: index,
    original: original ?? null,
    timestamp: instant.toISOString(),
    timestamp_ms: instant.getTime(),
    source,
    uncertain: source === 'arrival',
  });
  const text = original?.trim();
  if (!text) return { time: at(arrival, 'arrival'), stored: undefined };
  const stated = isoDate(text);
  // A time with its own zone (an ISO offset, or RFC 2822's GMT) means the same wherever it is read.
  if (stated && (statedOffsetMinutes(text) !== undefined || zoneAfterItsTime(text))) return { time: at(new Date(stated), 'explicit'), stored: original };
  const named = zone ?? 'UTC';
  // An ISO 8601 date or time without an offset is the zone's wall clock (a date, its midnight).
  const iso = stated !== undefined && ISO_DAY.test(text);
  const read = iso ? wallClockIn(named, new Date(stated)) : readInZone(text, named, arrival);
  if (!read || read.getUTCFullYear() > 9999 || read.getUTCFullYear() < 0) {
    throw badInput(`${field}.${index}.timestamp: "${text.slice(0, 80)}" is not a date Cairn can read in ${named}`, [{ path: [field, index, 'timestamp'], message: 'not a date', code: 'value_error' }]);
  }
  const relative = !iso && readInZone(text, named, new Date(arrival.getTime() + ELSEWHERE_MS))?.getTime() !== read.getTime();
  return { time: at(read, relative ? 'relative' : 'explicit'), stored: zonedIso(read, offsetAt(named, read)) };
}
