import type { Embedder } from './embedder';

/**
 * Embeddings started before they are needed. A job's memories are known once extraction ends, but
 * they were embedded only at indexing, after entity resolution: the embedding model idled while a
 * worker's jobs were extracted and resolved, then all of them queued for it at once. Extraction now
 * hands the texts over as soon as it has them (prefetchEmbeddings) and indexing takes the vectors
 * from here (embedPrefetched), embedding itself only what is missing: a text nobody prefetched, one
 * whose prefetch failed, expired or was taken by another job with the same text, or one prefetched
 * in another worker process. Every indexed memory is still embedded with the same model, once.
 */

/** Long enough for a job's extract → resolve → index; a job that never gets there only holds memory. */
const KEPT_MS = 10 * 60_000;
/** Enough for every job a worker has in flight (~4 KB each with a 384-d vector). */
const MAX_KEPT = 4_000;

interface Prefetched {
  vector: Promise<number[] | undefined>;
  expires: number;
}

const prefetched = new WeakMap<Embedder, Map<string, Prefetched>>();

/** Starts embedding `texts` in the background; a failure only means indexing embeds them itself. */
export function prefetchEmbeddings(embedder: Embedder, texts: string[]): void {
  const kept = keptFor(embedder);
  const now = Date.now();
  for (const [text, entry] of kept) {
    if (entry.expires > now) break; // insertion order is expiry order
    kept.delete(text);
  }
  const missing = [...new Set(texts)].filter((text) => !kept.has(text));
  if (missing.length === 0) return;
  const vectors = embedder.embed(missing).catch(() => undefined);
  missing.forEach((text, i) => kept.set(text, { vector: vectors.then((all) => all?.[i]), expires: now + KEPT_MS }));
  while (kept.size > MAX_KEPT) kept.delete(kept.keys().next().value!);
}

/** The vectors of `texts`, in order: prefetched ones taken (and forgotten), the rest embedded now. */
export async function embedPrefetched(embedder: Embedder, texts: string[]): Promise<number[][]> {
  const kept = prefetched.get(embedder);
  if (!kept || kept.size === 0) return embedder.embed(texts);
  const waiting = new Map<string, Promise<number[] | undefined>>();
  for (const text of texts) {
    const entry = kept.get(text);
    if (!entry || waiting.has(text)) continue;
    kept.delete(text);
    waiting.set(text, entry.vector);
  }
  const found = new Map<string, number[]>();
  for (const [text, vector] of waiting) {
    const value = await vector;
    if (value) found.set(text, value);
  }
  const missing = [...new Set(texts.filter((text) => !found.has(text)))];
  if (missing.length > 0) (await embedder.embed(missing)).forEach((vector, i) => found.set(missing[i]!, vector));
  return texts.map((text) => found.get(text)!);
}

function keptFor(embedder: Embedder): Map<string, Prefetched> {
  let kept = prefetched.get(embedder);
  if (!kept) prefetched.set(embedder, (kept = new Map()));
  return kept;
}
