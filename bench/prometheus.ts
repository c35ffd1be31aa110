/** Reading Prometheus text endpoints from the benches: the API's /metrics, the Temporal server's. */

/** The endpoint's text, or undefined when it cannot be read (not reachable, not OK, too slow). */
export async function scrapeText(url: string): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

/** A series' value in Prometheus text (`name` with its labels as the text writes them), if the text has it. */
function seriesValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}

/**
 * Starts a window over counter series of one endpoint (a histogram's `_sum`, `_count` and `_bucket`
 * lines are counters too), scraped once at each end; the returned function ends it and answers how
 * much each grew meanwhile. Null when the endpoint could not be read at either end, or when a series
 * is missing from it, unless `absentIsZero` (a labelled series appears once first observed).
 */
export async function seriesWindow(url: string, names: string[], { absentIsZero = false } = {}): Promise<() => Promise<Record<string, number> | null>> {
  const read = (text: string | undefined) => (text === undefined ? undefined : names.map((name) => seriesValue(text, name) ?? (absentIsZero ? 0 : undefined)));
  const before = read(await scrapeText(url));
  return async () => {
    const after = read(await scrapeText(url));
    if (!before || !after || [...before, ...after].some((value) => value === undefined)) return null;
    return Object.fromEntries(names.map((name, i) => [name, after[i]! - before[i]!]));
  };
}

/** seriesWindow over one unlabelled counter: how much it grew, or null. */
export async function counterWindow(url: string, name: string): Promise<() => Promise<number | null>> {
  const end = await seriesWindow(url, [name]);
  return async () => (await end())?.[name] ?? null;
}
