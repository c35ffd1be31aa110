/** What bench:ingest measures beside the rates: CPU by process and thread, Elasticsearch requests and work, the embedder alone, activity timings. */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { Client } from '@elastic/elasticsearch';
import type { Config } from '../../lib/config';
import { mapBounded } from '../../lib/map-bounded';
import type { Embedder } from '../../lib/models/embedder';
import { round } from '../stats';
import type { HistoryEvent } from './targets';

const millis = (event: HistoryEvent | undefined) =>
  event?.eventTime ? Number(event.eventTime.seconds ?? 0) * 1000 + Math.round((event.eventTime.nanos ?? 0) / 1e6) : 0;

/**
 * Where an activity's time goes, from the workflow history: waiting in the task queue (scheduled →
 * started: worker slots, server latency) versus running (started → closed).
 */
export function activityTimings(events: HistoryEvent[]): Map<string, { queued: number; running: number; count: number }> {
  const byId = new Map(events.map((event) => [Number(event.eventId), event]));
  const timings = new Map<string, { queued: number; running: number; count: number }>();
  for (const event of events) {
    const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    if (!closed) continue;
    const scheduled = byId.get(Number(closed.scheduledEventId));
    const started = byId.get(Number(closed.startedEventId));
    const name = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? 'unknown';
    const entry = timings.get(name) ?? { queued: 0, running: 0, count: 0 };
    entry.queued += millis(started) - millis(scheduled);
    entry.running += millis(event) - millis(started);
    entry.count += 1;
    timings.set(name, entry);
  }
  return timings;
}

/**
 * Elasticsearch requests by endpoint ("POST _bulk", "GET {index}/_doc"): index names and ids are
 * folded, so the counts say which calls a job makes and how many.
 */
export function countRequests(es: Client): { counts: Map<string, number>; stop(): void } {
  const counts = new Map<string, number>();
  const onResponse = (_error: unknown, result: { meta?: { request?: { params?: { method?: string; path?: string } } } } | null) => {
    const params = result?.meta?.request?.params;
    if (!params?.path) return;
    const endpoint = params.path.split('/').filter(Boolean).map((part) => (part.startsWith('_') ? part : '{x}')).join('/');
    const key = `${params.method} ${endpoint}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  es.diagnostic.on('response', onResponse);
  return { counts, stop: () => es.diagnostic.off('response', onResponse) };
}

/** CPU seconds the Elasticsearch node has spent (the cluster is shared: other clients' work counts too). */
export async function elasticsearchCpuSeconds(es: Client): Promise<number | undefined> {
  try {
    const stats = await es.nodes.stats({ metric: 'process' });
    return Object.values(stats.nodes).reduce((total, node) => total + (node.process?.cpu?.total_in_millis ?? 0), 0) / 1000;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds the local Temporal dev server has spent (Linux: its /proc entry, found by its command
 * line and port); undefined for a remote server or where /proc is not there.
 */
export function localTemporalCpuSeconds(config: Config): number | undefined {
  if (!config.localTemporal) return undefined;
  const port = config.temporalAddress.split(':').pop();
  try {
    for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!args.includes('start-dev') || args[args.indexOf('--port') + 1] !== port) continue;
      // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name): user and system ticks.
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * CPU seconds the main thread has spent (Linux: /proc/thread-self/schedstat; undefined elsewhere). In
 * process the main thread runs the API and every activity; the process's other threads are the
 * model's, Temporal's workflow thread and its core's, V8's compiler and GC helpers and libuv's pool.
 */
export function mainThreadCpuSeconds(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return undefined;
  }
}

/**
 * What Elasticsearch spent on this bench's own indices (so other clients of a shared node do not
 * count): milliseconds indexing, refreshing, merging, flushing, searching and reading by id.
 */
export async function indexWork(es: Client, prefix: string): Promise<Record<string, Record<string, number>> | undefined> {
  try {
    const stats = await es.indices.stats({ index: `${prefix}-*`, metric: ['indexing', 'refresh', 'merge', 'flush', 'search', 'get'] });
    return Object.fromEntries(
      Object.entries(stats.indices ?? {}).map(([index, { total }]) => [
        index.slice(prefix.length + 1),
        {
          docs: total?.indexing?.index_total ?? 0,
          index_ms: total?.indexing?.index_time_in_millis ?? 0,
          refreshes: total?.refresh?.total ?? 0,
          refresh_ms: total?.refresh?.total_time_in_millis ?? 0,
          merge_ms: total?.merges?.total_time_in_millis ?? 0,
          flush_ms: total?.flush?.total_time_in_millis ?? 0,
          queries: total?.search?.query_total ?? 0,
          query_ms: (total?.search?.query_time_in_millis ?? 0) + (total?.search?.fetch_time_in_millis ?? 0),
          get_ms: total?.get?.time_in_millis ?? 0,
        },
      ]),
    );
  } catch {
    return undefined;
  }
}

/**
 * Texts handed to the embedding model while counting, and how many of them were distinct: every memory
 * is embedded once, plus entity names; a text embedded twice shows as texts > distinct.
 */
export function countEmbeddings(embedder: Embedder): { texts: number; distinct: Set<string>; calls: number; stop(): void } {
  const embed = embedder.embed;
  const counts = { texts: 0, distinct: new Set<string>(), calls: 0, stop: () => void (embedder.embed = embed) };
  embedder.embed = (texts, options) => {
    counts.calls += 1;
    counts.texts += texts.length;
    for (const text of texts) counts.distinct.add(text);
    return embed.call(embedder, texts, options);
  };
  return counts;
}

/**
 * A figure the local embedder keeps, when the embedder has it: `busyMs` (time at least one inference
 * thread was embedding) or `cpuMs` (its inference threads' CPU time, Linux).
 */
export const modelMs = (embedder: Embedder | undefined, figure: 'busyMs' | 'cpuMs'): number | undefined => {
  const value = embedder && figure in embedder ? (embedder as unknown as Record<string, unknown>)[figure] : undefined;
  return typeof value === 'number' ? value : undefined;
};

/** `--cpu-profile <file>`: a V8 CPU profile of the main thread (API, worker, activities) over the timed run only. */
export async function startMainThreadProfile(file: string | undefined): Promise<() => Promise<void>> {
  if (!file) return async () => undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/** The embedder alone over the pipeline's chunks, in the pipeline's batch size and fan-out. */
export async function embedderAlone(embedder: Embedder, texts: string[], batchSize: number, batchConcurrency: number) {
  await embedder.embed(texts.slice(0, 8));
  const batches = Array.from({ length: Math.ceil(texts.length / batchSize) }, (_, i) => texts.slice(i * batchSize, (i + 1) * batchSize));
  return {
    texts,
    async run(): Promise<{ seconds: number; cpuSeconds: number }> {
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      await mapBounded(batches, batchConcurrency, (batch) => embedder.embed(batch));
      const cpu = process.cpuUsage(cpuBefore);
      return { seconds: (performance.now() - started) / 1000, cpuSeconds: round((cpu.user + cpu.system) / 1e6) };
    },
  };
}
