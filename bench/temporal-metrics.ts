import { scrapeText } from './prometheus';
import { round } from './stats';

/**
 * The Temporal server's persistence work over a window, from its Prometheus endpoint (the local dev
 * server exposes one at TEMPORAL_METRICS_PORT). The dev server keeps everything in one SQLite file
 * over a single connection, so the summed latency of its persistence calls over a window says how
 * busy that connection was: the queue every workflow start waits in.
 */
export interface PersistenceWork {
  calls: number;
  /** Summed latency of all calls (seconds): includes time spent waiting for the connection. */
  latency_s: number;
  by_operation: Record<string, { calls: number; mean_ms: number }>;
}

type Sample = Map<string, { calls: number; seconds: number }>;

const LINE = /^(persistence_requests|persistence_latency_sum)\{([^}]*)\} ([0-9.eE+-]+)$/;

async function scrape(url: string): Promise<Sample | undefined> {
  const text = await scrapeText(url);
  if (text === undefined) return undefined;
  const sample: Sample = new Map();
  for (const line of text.split('\n')) {
    const match = LINE.exec(line);
    const operation = match && /operation="([^"]*)"/.exec(match[2]!)?.[1];
    if (!match || !operation) continue;
    const entry = sample.get(operation) ?? { calls: 0, seconds: 0 };
    if (match[1] === 'persistence_requests') entry.calls += Number(match[3]);
    else entry.seconds += Number(match[3]);
    sample.set(operation, entry);
  }
  return sample;
}

/** Starts a window; the returned function ends it (undefined when the endpoint is not reachable). */
export async function persistenceWindow(url: string | undefined): Promise<() => Promise<PersistenceWork | undefined>> {
  const before = url ? await scrape(url) : undefined;
  return async () => {
    const after = before && url ? await scrape(url) : undefined;
    if (!before || !after) return undefined;
    const operations = [...after]
      .map(([operation, { calls, seconds }]) => {
        const earlier = before.get(operation) ?? { calls: 0, seconds: 0 };
        return { operation, calls: calls - earlier.calls, seconds: seconds - earlier.seconds };
      })
      .filter((entry) => entry.calls > 0)
      .sort((a, b) => b.seconds - a.seconds);
    return {
      calls: operations.reduce((sum, entry) => sum + entry.calls, 0),
      latency_s: round(operations.reduce((sum, entry) => sum + entry.seconds, 0), 2),
      by_operation: Object.fromEntries(operations.map((entry) => [entry.operation, { calls: entry.calls, mean_ms: round((entry.seconds * 1000) / entry.calls, 2) }])),
    };
  };
}
