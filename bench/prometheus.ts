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

/** An unlabelled counter's value in Prometheus text, if the text has it. */
function counterValue(text: string | undefined, name: string): number | undefined {
  const line = text?.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}

/**
 * Starts a window over an unlabelled counter; the returned function ends it and answers how much the
 * counter grew meanwhile (null when it could not be read at either end).
 */
export async function counterWindow(url: string, name: string): Promise<() => Promise<number | null>> {
  const before = counterValue(await scrapeText(url), name);
  return async () => {
    const after = counterValue(await scrapeText(url), name);
    return before === undefined || after === undefined ? null : after - before;
  };
}
