import fs from 'node:fs';
import { BackfillRuns } from '../lib/backfill/runs';
import type { BackfillProgress } from '../lib/backfill/request';
import { cosine, type Embedder } from '../lib/models/embedder';
import { createWorker, type CairnWorker } from '../worker/create-worker';
import { startHarness, type Harness } from './support/harness';

/**
 * The real local embedder, wrapped to count how often each text is embedded and to hold one call
 * open on demand, so the test can stop the worker while a batch is in flight.
 */
class CountingEmbedder implements Embedder {
  readonly calls = new Map<string, number>();
  private gate?: { afterTexts: number; reached: () => void; release: Promise<void> };
  embedded = 0;

  constructor(private readonly inner: Embedder) {}

  get model() {
    return this.inner.model;
  }

  get dims() {
    return this.inner.dims;
  }

  /** The first call that takes the total past `afterTexts` waits for `release`. */
  holdAfter(afterTexts: number, release: Promise<void>): Promise<void> {
    return new Promise((reached) => {
      this.gate = { afterTexts, reached, release };
    });
  }

  async embed(texts: string[]): Promise<number[][]> {
    for (const text of texts) this.calls.set(text, (this.calls.get(text) ?? 0) + 1);
    this.embedded += texts.length;
    const gate = this.gate;
    if (gate && this.embedded >= gate.afterTexts) {
      this.gate = undefined;
      gate.reached();
      await gate.release;
    }
    return this.inner.embed(texts);
  }
}

const ACME_MEMORIES = 300;
const GLOBEX_MEMORIES = 20;

function memoryDoc(tenant: string, i: number) {
  return {
    id: `mem_${tenant}_${String(i).padStart(4, '0')}`,
    tenant,
    text: `${tenant} memory ${i}: the agent learned fact number ${i} about project Cairn.`,
    type: 'fact',
    confidence: 0.9,
    entities: [],
    scope: { tenant },
    provenance: { source_id: `src_${tenant}`, job_id: 'job-seed', document_type: 'document', format: 'TXT', chunk_index: i },
    created_at: '2026-01-01T00:00:00.000Z',
    embedding_model: 'an-older-model',
  };
}

describe('re-embed backfill: every memory of the tenant re-embedded exactly once, across a worker restart', () => {
  let h: Harness;
  let embedder: CountingEmbedder;
  const backfillQueue = () => `${h.config.TEMPORAL_TASK_QUEUE}-backfill`;
  const bundle = () => ({ code: fs.readFileSync(process.env.CAIRN_TEST_WORKFLOW_BUNDLE!, 'utf8') });

  async function startBackfillWorker(): Promise<{ worker: CairnWorker; running: Promise<void>; close: () => Promise<void> }> {
    const runtime = { ...h.runtime, models: { ...h.runtime.models, embedder } };
    const { worker, connection } = await createWorker({ runtime, taskQueue: backfillQueue(), workflowBundle: bundle() });
    const running = worker.run();
    return {
      worker,
      running,
      close: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
        await connection.close();
      },
    };
  }

  beforeAll(async () => {
    h = await startHarness();
    embedder = new CountingEmbedder(h.runtime.models.embedder!);
    const docs = [
      ...Array.from({ length: ACME_MEMORIES }, (_, i) => memoryDoc('acme', i)),
      ...Array.from({ length: GLOBEX_MEMORIES }, (_, i) => memoryDoc('globex', i)),
    ];
    const response = await h.runtime.es.bulk({
      refresh: 'wait_for',
      operations: docs.flatMap((doc) => [{ index: { _index: h.runtime.indices.memories, _id: doc.id } }, doc]),
    });
    expect(response.errors).toBe(false);
  });
  afterAll(async () => h?.close());

  it('re-embeds 300 memories once each, continues-as-new, and survives the worker stopping mid-run', async () => {
    const runs = new BackfillRuns(h.temporal.client, backfillQueue());
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holding = embedder.holdAfter(120, released);

    const first = await startBackfillWorker();
    const started = await runs.start('acme', {
      backfill: 'reembed',
      batch_size: 20,
      concurrency: 2,
      page_size: 50,
      pages_per_run: 2,
    });

    // A batch is now inside the embedder: stop the worker under it, then let the batch finish.
    await Promise.race([holding, new Promise((_, reject) => setTimeout(() => reject(new Error('no batch reached the embedder')), 60_000))]);
    const midRun = await runs.progress('acme', started.id);
    expect(midRun.status).toBe('running');
    expect(midRun.processed).toBeLessThan(ACME_MEMORIES);
    first.worker.shutdown();
    release();
    await first.close();
    const embeddedBeforeRestart = embedder.embedded;
    expect(embeddedBeforeRestart).toBeLessThan(ACME_MEMORIES);

    const second = await startBackfillWorker();
    try {
      const result: BackfillProgress = await runs.result('acme', started.id);
      expect(result.status).toBe('completed');
      expect(result.total).toBe(ACME_MEMORIES);
      expect(result.scanned).toBe(ACME_MEMORIES);
      expect(result.processed + result.skipped).toBe(ACME_MEMORIES);
      expect(result.processed).toBe(ACME_MEMORIES);
      // 6 pages of 50 at 2 pages per run: the history was handed over at least twice.
      expect(result.runs).toBeGreaterThanOrEqual(3);
      // The restarted worker did the rest.
      expect(embedder.embedded).toBe(ACME_MEMORIES);
      expect(embedder.embedded).toBeGreaterThan(embeddedBeforeRestart);

      // Exactly once: every acme text went through the embedder one time; no globex text did.
      for (let i = 0; i < ACME_MEMORIES; i++) expect([i, embedder.calls.get(memoryDoc('acme', i).text)]).toEqual([i, 1]);
      for (let i = 0; i < GLOBEX_MEMORIES; i++) expect(embedder.calls.get(memoryDoc('globex', i).text)).toBeUndefined();

      await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
      const marked = await h.runtime.es.count({
        index: h.runtime.indices.memories,
        query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { backfill_runs: result.run_id } }, { term: { embedding_model: embedder.model } }] } },
      });
      expect(marked.count).toBe(ACME_MEMORIES);
      const globexTouched = await h.runtime.es.count({
        index: h.runtime.indices.memories,
        query: { bool: { filter: [{ term: { tenant: 'globex' } }, { exists: { field: 'backfill_runs' } }] } },
      });
      expect(globexTouched.count).toBe(0);

      // The vectors are the model's: a re-embedded memory is its own nearest neighbour.
      const probe = memoryDoc('acme', 42);
      const [vector] = await h.runtime.models.embedder!.embed([probe.text]);
      const knn = await h.runtime.es.search({
        index: h.runtime.indices.memories,
        knn: { field: 'embedding', query_vector: vector!, k: 1, num_candidates: 50, filter: { term: { tenant: 'acme' } } },
        _source: ['id'],
      });
      expect(knn.hits.hits[0]?._id).toBe(probe.id);

      // Progress stays answerable through the API (tenant-scoped).
      const polled = await h.api('GET', `/v1/backfills/${started.id}`);
      expect(polled.status).toBe(200);
      expect(polled.body.processed).toBe(ACME_MEMORIES);
      expect((await h.api('GET', `/v1/backfills/${started.id}`, { key: h.keys.globex })).status).toBe(404);
    } finally {
      await second.close();
    }
  });

  it('another tenant\'s backfill re-embeds only that tenant\'s memories', async () => {
    const second = await startBackfillWorker();
    try {
      const runs = new BackfillRuns(h.temporal.client, backfillQueue());
      const started = await runs.start('globex', { backfill: 'reembed', batch_size: 50, concurrency: 4, page_size: 500, pages_per_run: 20 });
      const result = await runs.result('globex', started.id);
      expect(result.processed).toBe(GLOBEX_MEMORIES);
      expect(result.runs).toBe(1);
      for (let i = 0; i < GLOBEX_MEMORIES; i++) expect(embedder.calls.get(memoryDoc('globex', i).text)).toBe(1);
    } finally {
      await second.close();
    }
  });

  it('leaves a memory edited while its batch was being embedded with the edit\'s vector, not the old text\'s', async () => {
    const raced = { ...memoryDoc('globex', 900), id: 'mem_globex_raced', text: 'globex memory: the greenhouse grows tulips and orchids.' };
    await h.runtime.es.index({ index: h.runtime.indices.memories, id: raced.id, document: raced, refresh: 'wait_for' });
    const worker = await startBackfillWorker();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holding = embedder.holdAfter(embedder.embedded + 1, released);
    try {
      const runs = new BackfillRuns(h.temporal.client, backfillQueue());
      const started = await runs.start('globex', { backfill: 'reembed', batch_size: 50, concurrency: 1, page_size: 500, pages_per_run: 20 });
      // The batch (every globex memory, the raced one among them) has been read and is being embedded.
      await Promise.race([holding, new Promise((_, reject) => setTimeout(() => reject(new Error('no batch reached the embedder')), 60_000))]);
      const newText = 'the submarine fleet docks at Portsmouth every winter';
      const edited = await h.api('PATCH', `/v1/memories/${raced.id}`, { key: h.keys.globex, body: { content: newText, merge_strategy: 'replace' } });
      expect(edited.status).toBe(200);
      release();
      const result = await runs.result('globex', started.id);
      expect(result).toMatchObject({ status: 'completed', processed: GLOBEX_MEMORIES, skipped: 1 });
    } finally {
      release();
      await worker.close();
    }
    const { _source } = await h.runtime.es.get<{ text: string; embedding: number[] }>({ index: h.runtime.indices.memories, id: raced.id });
    const [oldVector, newVector] = await h.runtime.models.embedder!.embed([raced.text, _source!.text]);
    expect(_source!.text).toMatch(/submarine/);
    expect(cosine(_source!.embedding, newVector!)).toBeGreaterThan(0.99);
    expect(cosine(_source!.embedding, oldVector!)).toBeLessThan(0.9);
  });

  it('a cancelled re-embed stops between batches: the batch in flight finishes, is counted, and then it says cancelled', async () => {
    const seeded = Array.from({ length: 6 }, (_, i) => memoryDoc('initech', i));
    const response = await h.runtime.es.bulk({
      refresh: 'wait_for',
      operations: seeded.flatMap((doc) => [{ index: { _index: h.runtime.indices.memories, _id: doc.id } }, doc]),
    });
    expect(response.errors).toBe(false);
    const worker = await startBackfillWorker();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holding = embedder.holdAfter(embedder.embedded + 1, released);
    let cancelledId = '';
    try {
      const runs = new BackfillRuns(h.temporal.client, backfillQueue());
      const started = await runs.start('initech', { backfill: 'reembed', batch_size: 2, concurrency: 1, page_size: 50, pages_per_run: 20 });
      await Promise.race([holding, new Promise((_, reject) => setTimeout(() => reject(new Error('no batch reached the embedder')), 60_000))]);
      await runs.cancel('initech', started.id);
      // The first batch is still inside the embedder: the backfill waits for it.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await runs.progress('initech', started.id)).status).toBe('running');
      release();
      await expect(runs.result('initech', started.id)).rejects.toThrow();
      expect(await runs.progress('initech', started.id)).toMatchObject({ status: 'cancelled', processed: 2 });
      cancelledId = started.id;
      // That batch's two memories have the new model's vectors; the other four were left as they were.
      await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
      const renewed = await h.runtime.es.count({
        index: h.runtime.indices.memories,
        query: { bool: { filter: [{ term: { tenant: 'initech' } }, { term: { embedding_model: embedder.model } }] } },
      });
      expect(renewed.count).toBe(2);
    } finally {
      release();
      await worker.close();
    }
    // With no worker on its queue a cancelled backfill's progress (workflow state) cannot be read: a
    // 503 saying why, at once, not a 500 or a long wait.
    const asked = Date.now();
    await expect(new BackfillRuns(h.temporal.client, backfillQueue()).progress('initech', cancelledId)).rejects.toMatchObject({ code: 'upstream_failure', message: expect.stringMatching(/worker/) });
    expect(Date.now() - asked).toBeLessThan(10_000);
  });

  it('refuses an in-place re-embed that would mix two models\' vectors, with the reason', async () => {
    // Test double for a worker configured with another model: only its name and size are read.
    const otherModel: Embedder = {
      model: 'some-other-model',
      dims: 768,
      embed: async () => {
        throw new Error('must not be called: the backfill should stop before embedding');
      },
    };
    const runtime = { ...h.runtime, models: { ...h.runtime.models, embedder: otherModel } };
    const { worker, connection } = await createWorker({ runtime, taskQueue: `${backfillQueue()}-other`, workflowBundle: bundle() });
    const running = worker.run();
    const runs = new BackfillRuns(h.temporal.client, `${backfillQueue()}-other`);
    let id: string;
    try {
      const started = await runs.start('acme', { backfill: 'reembed', batch_size: 50, concurrency: 1, page_size: 500, pages_per_run: 20 });
      id = started.id;
      await expect(runs.result('acme', started.id)).rejects.toThrow();
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
    }
    // Read with no worker left on its queue: a failed backfill's progress travels with its failure.
    const progress = await runs.progress('acme', id);
    expect(progress.status).toBe('failed');
    expect(progress.errors[0]?.message).toMatch(/reindex/);
    expect(progress.processed).toBe(0);
  });

  it('rejects a malformed backfill request with a 400 naming the field', async () => {
    const unknown = await h.api('POST', '/v1/backfills', { body: { backfill: 'defragment' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/backfill/);
    const importWithoutSources = await h.api('POST', '/v1/backfills', { body: { backfill: 'import' } });
    expect(importWithoutSources.status).toBe(400);
    expect(importWithoutSources.body.error.message).toMatch(/urls|folder/);
    const escaping = await h.api('POST', '/v1/backfills', { body: { backfill: 'import', folder: '../../etc' } });
    expect(escaping.status).toBe(400);
    // URLs travel in the workflow's input, which Temporal bounds: too many long ones are a 400 that
    // says so (it was a 500, and a schedule's a 503 blaming Temporal), and one URL is as long as /v1/urls takes.
    const longUrls = Array.from({ length: 70 }, (_, i) => `https://example.com/${i}/${'a'.repeat(4000)}`);
    for (const route of ['/v1/backfills', '/v1/schedules']) {
      const tooMany = await h.api('POST', route, { body: { backfill: 'import', urls: longUrls, ...(route === '/v1/schedules' ? { every: '24h' } : {}) } });
      expect([route, tooMany.status, tooMany.body.error.message]).toEqual([route, 400, expect.stringMatching(/at most 256 KB of URLs/)]);
    }
    const tooLong = await h.api('POST', '/v1/backfills', { body: { backfill: 'import', urls: [`https://example.com/${'a'.repeat(5000)}`] } });
    expect(tooLong.status).toBe(400);
    // A field it does not know is refused, naming it, not ignored.
    for (const [route, body] of [['/v1/backfills', { backfill: 'reextract', source_ids: ['src_1'] }], ['/v1/schedules', { backfill: 'reembed', every: '24h', tenant: 'other' }]] as const) {
      const refused = await h.api('POST', route, { body });
      expect([route, refused.status, refused.body.error.message]).toEqual([route, 400, expect.stringMatching(/source_ids|tenant/)]);
    }
  });
});
