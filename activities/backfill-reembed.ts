import { heartbeat } from '@temporalio/activity';
import type { Client } from '@elastic/elasticsearch';
import { embeddingText } from '../lib/domain/memory';
import { badInput, upstreamFailure } from '../lib/errors';
import type { ActivityDeps } from './deps';

export interface MemoryBatch {
  /** The backfill run: written on each memory it has handled, so a retried batch skips what is done. */
  runId: string;
  ids: string[];
  /** Index to read from; defaults to the memories alias. */
  index?: string;
}

export interface BatchOutcome {
  processed: number;
  /** Memories this run had already handled (a retried batch), or that vanished since the page was read. */
  skipped: number;
}

/** Runs recorded per memory; older ones fall off so the field stays small. */
const KEPT_RUNS = 10;

export interface MarkedMemory {
  id: string;
  source: Record<string, unknown> & { text: string; context?: string; backfill_runs?: string[]; embedding_model?: string };
  /** The version read, so the write lands only on it (an edit since brought its own vector). */
  seqNo: number;
  primaryTerm: number;
}

export function withRun(runs: string[] | undefined, runId: string): string[] {
  return [...(runs ?? []).filter((run) => run !== runId), runId].slice(-KEPT_RUNS);
}

/** The memories of a batch that still exist and that this run has not handled yet. */
export async function pendingMemories(es: Client, index: string, batch: MemoryBatch, fields?: string[]): Promise<{ pending: MarkedMemory[]; skipped: number }> {
  // mget is real-time: it sees a previous attempt's writes even before a refresh.
  const { docs } = await es.mget<MarkedMemory['source']>({ index, ids: batch.ids, _source_includes: fields });
  const pending: MarkedMemory[] = [];
  for (const doc of docs) {
    if (!('found' in doc) || !doc.found || !doc._source) continue;
    if (doc._source.backfill_runs?.includes(batch.runId)) continue;
    pending.push({ id: doc._id, source: doc._source, seqNo: doc._seq_no!, primaryTerm: doc._primary_term! });
  }
  return { pending, skipped: batch.ids.length - pending.length };
}

export function assertBulkOk(response: { errors: boolean; items: Record<string, { error?: { type?: string; reason?: string | null } } | undefined>[] }, what: string) {
  if (!response.errors) return;
  const first = response.items.map((item) => Object.values(item)[0]?.error).find(Boolean);
  throw upstreamFailure(`Elasticsearch rejected ${what}: ${first?.type}: ${first?.reason}`);
}

/** Re-embeds one batch of memories in place with the configured embedder. */
export function createReembedActivity(deps: ActivityDeps) {
  return async function reembedMemories(batch: MemoryBatch): Promise<BatchOutcome> {
    const embedder = deps.embedder;
    if (!embedder) throw badInput('no embedding model is configured on the worker: there is nothing to re-embed with');
    const index = batch.index ?? deps.indices.memories;
    const { pending, skipped } = await pendingMemories(deps.es, index, batch, ['text', 'context', 'backfill_runs']);
    if (pending.length === 0) return { processed: 0, skipped };
    const vectors = await embedder.embed(pending.map((memory) => embeddingText(memory.source)));
    heartbeat({ embedded: vectors.length });
    // Each write only onto the version whose text was embedded: a memory edited meanwhile (the edit
    // embedded its new text) is left as the edit wrote it, not given the old text's vector back.
    const response = await deps.es.bulk({
      operations: pending.flatMap((memory, i) => [
        { update: { _index: index, _id: memory.id, if_seq_no: memory.seqNo, if_primary_term: memory.primaryTerm } },
        {
          doc: {
            embedding: vectors[i],
            embedding_model: embedder.model,
            backfill_runs: withRun(memory.source.backfill_runs, batch.runId),
          },
        },
      ]),
    });
    const others = response.items.filter((item) => item.update?.status !== 409);
    const changed = response.items.length - others.length;
    assertBulkOk({ errors: others.some((item) => item.update?.error), items: others }, 're-embedded memories');
    return { processed: pending.length - changed, skipped: skipped + changed };
  };
}
