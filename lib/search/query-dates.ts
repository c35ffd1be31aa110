import * as chrono from 'chrono-node';

/** A span of days a query points at, as ISO dates: `gte` inclusive, `lt` exclusive. */
export interface DateWindow {
  gte: string;
  lt: string;
}

/** How many past years a month named without a year ("in June") may mean. */
const YEARS_BACK = 10;
const YEAR_ALONE = /\b(?:in|during|of|since|throughout)\s+((?:19|20)\d{2})\b/gi;

/**
 * The days a query talks about: "on October 13, 2023" is that day (give or take one, since an event
 * is often told the day after), "in July 2023" that month, "in June" June of each recent year,
 * "in 2023" the year, "yesterday" or "last week" resolved against `now`. Times of day alone mean no
 * window. Memories whose session or event dates fall inside rank higher (execute.ts).
 */
export function dateWindowsOf(query: string, now: Date): DateWindow[] {
  const windows: DateWindow[] = [];
  for (const result of chrono.parse(query, now, { forwardDate: false })) {
    const start = result.start;
    if (!start.isCertain('month') && !start.isCertain('day') && !start.isCertain('weekday') && !/\b(week|month|year)\b/i.test(result.text)) continue;
    const date = start.date();
    if (/\bweek\b/i.test(result.text)) windows.push(days(date, 0, 7));
    else if (start.isCertain('day') || start.isCertain('weekday')) windows.push(days(date, -1, 2));
    else if (start.isCertain('year')) windows.push(month(date.getUTCFullYear(), date.getUTCMonth()));
    else for (let back = 0; back <= YEARS_BACK; back++) windows.push(month(now.getUTCFullYear() - back, date.getUTCMonth()));
  }
  for (const match of query.matchAll(YEAR_ALONE)) {
    const year = Number(match[1]);
    windows.push({ gte: `${year}-01-01`, lt: `${year + 1}-01-01` });
  }
  // Dates Elasticsearch can read (four-digit years): "900000000 hours ago" or "on 9999-12-31" give none.
  return windows.filter((window) => WITHIN_YEARS.test(window.gte) && WITHIN_YEARS.test(window.lt));
}

const WITHIN_YEARS = /^\d{4}-\d{2}-\d{2}$/;

const isoDay = (date: Date) => date.toISOString().slice(0, 10);

function days(date: Date, from: number, to: number): DateWindow {
  const at = (offset: number) => isoDay(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + offset)));
  return { gte: at(from), lt: at(to) };
}

function month(year: number, index: number): DateWindow {
  return { gte: isoDay(new Date(Date.UTC(year, index, 1))), lt: isoDay(new Date(Date.UTC(year, index + 1, 1))) };
}
