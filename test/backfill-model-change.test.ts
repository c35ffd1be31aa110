import { embeddingText } from '../lib/domain/memory';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Activities } from '../activities/registry';
import { createApp } from '../api/server';
import { storedEmbedding } from '../lib/elasticsearch/indices';
import { createRuntime, searchDepsOf } from '../lib/runtime';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';
import { startOpenAITestDouble, type OpenAITestDouble } from './support/openai-test-double';

const LOCAL = { model: 'all-MiniLM-L6-v2', dims: 384 };
const OPENAI = { model: 'openai/text-embedding-3-small', dims: 1536 };

/**
 * An embedding model change, end to end: memories ingested with the local model (384 dims), then a
 * second deployment on the same indices configured for OpenAI (1536 dims, served by the local OpenAI
 * TEST DOUBLE — OpenAI's servers cannot be reached from here). It starts, searches with BM25 only,
 * holds new ingests back, and a reindex backfill re-embeds everything into a new index version.
 */
describe('embedding model change: start despite the mismatch, reindex to the new model, search kNN again', () => {
  let before: Harness;
  let after: Harness;
  let double: OpenAITestDouble;
  /** Set by the test: runs after the reindex copied its first batch (the old index is still live). */
  let afterFirstCopy: ((ids: string[]) => Promise<void>) | undefined;

  const conversation = (id: string, lines: [string, string][]) => ({
    conversation_id: id,
    session_date: '2024-03-02T10:00:00Z',
    messages: lines.map(([name, content], i) => ({ role: 'user', name, content, turn_id: `${id}:${i}` })),
  });

  beforeAll(async () => {
    before = await startHarness({ tenants: ['acme'] });
    for (const body of [
      conversation('garden', [
        ['Caroline', 'I planted tomatoes and basil on the balcony in April.'],
        ['Melanie', 'My sunflowers reached two metres before the storm in Lisbon.'],
        ['Caroline', 'The compost bin finally stopped smelling after I added cardboard.'],
      ]),
      conversation('travel', [
        ['Melanie', 'We are taking the night train from Vienna to Venice in June.'],
        ['Caroline', 'Bring earplugs, the couchette cars are noisy.'],
      ]),
    ]) {
      const accepted = await before.api('POST', '/v1/conversations', { body });
      expect(accepted.status).toBe(202);
      expect((await before.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
    }
    expect(await storedEmbedding(before.runtime.es, before.runtime.indices.memories)).toEqual(LOCAL);

    double = await startOpenAITestDouble(OPENAI.dims);
    after = await startHarness({
      tenants: ['acme'],
      env: {
        ELASTICSEARCH_INDEX_PREFIX: before.config.ELASTICSEARCH_INDEX_PREFIX,
        OPENAI_API_KEY: 'sk-test-double',
        OPENAI_BASE_URL: double.baseUrl,
        OPENAI_EMBEDDING_MODEL: 'text-embedding-3-small',
        EMBEDDING_PROVIDER: 'openai',
        EXTRACTION_PROVIDER: 'local',
      },
      wrapActivities: (activities: Activities) => ({
        ...activities,
        copyMemories: async (...args: Parameters<Activities['copyMemories']>) => {
          const outcome = await activities.copyMemories(...args);
          const hook = afterFirstCopy;
          afterFirstCopy = undefined;
          if (hook) await hook(args[0].ids);
          return outcome;
        },
      }),
    });
  });
  afterAll(async () => {
    await after?.close();
    await before?.close();
    await double?.close();
  });

  const memoriesAlias = () => after.runtime.indices.memories;
  const entitiesAlias = () => after.runtime.indices.entities;
  const search = (body: object) => after.api('POST', '/v1/search', { body });
  const embeddedInputs = () => double.requests.filter((request) => request.path === '/v1/embeddings').flatMap((request) => [request.body.input].flat() as string[]);

  async function allMemories() {
    await after.runtime.es.indices.refresh({ index: memoriesAlias() });
    const response = await after.runtime.es.search<{ text: string; context?: string; embedding?: number[]; embedding_model?: string; provenance: { job_id: string } }>({
      index: memoriesAlias(),
      size: 1000,
      query: { match_all: {} },
    });
    return response.hits.hits.map((hit) => ({ id: hit._id!, ...hit._source! }));
  }

  let oldMemories: Awaited<ReturnType<typeof allMemories>>;
  let pendingJob: string;

  it('starts with the mismatch flagged, and warns with both models and the remedy', async () => {
    expect(after.runtime.embeddingMismatch).toMatchObject({ index: 'memories', stored: LOCAL, configured: OPENAI });
    expect(after.runtime.embeddingMatch.lastKnown.map((mismatch) => mismatch.index).sort()).toEqual(['entities', 'memories']);

    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const runtime = await createRuntime(after.config, log);
    await runtime.close();
    const warning = lines.map((line) => JSON.parse(line)).find((entry) => entry.level === 40 && /Embedding model change/.test(entry.msg));
    expect(warning?.msg).toContain(LOCAL.model);
    expect(warning?.msg).toContain(OPENAI.model);
    expect(warning?.msg).toMatch(/POST \/v1\/backfills \{"backfill":"reindex"\}/);
    expect(warning?.msg).toMatch(/cairn backfill reindex/);

    oldMemories = await allMemories();
    expect(oldMemories.length).toBeGreaterThanOrEqual(4);
    expect(oldMemories.every((memory) => memory.embedding_model === LOCAL.model && memory.embedding?.length === LOCAL.dims)).toBe(true);
  });

  it('falls back to BM25 for hybrid and kNN searches, and says so', async () => {
    for (const mode of ['hybrid', 'knn']) {
      const answer = await search({ query: 'night train to Venice', mode });
      expect(answer.status).toBe(200);
      expect(answer.body.methods).toEqual(['bm25']);
      expect(answer.body.warnings).toHaveLength(1);
      expect(answer.body.warnings[0]).toMatch(/BM25 only/);
      expect(answer.body.warnings[0]).toContain(LOCAL.model);
      expect(answer.body.results[0].text).toMatch(/night train/);
      for (const result of answer.body.results) expect(Object.keys(result.ranks)).toEqual(['bm25']);
    }
    const bm25 = await search({ query: 'night train to Venice', mode: 'bm25' });
    expect(bm25.body.warnings).toBeUndefined();
    // No query was embedded with the new model against the old index.
    expect(embeddedInputs()).not.toContain('night train to Venice');
  });

  it('reports the pending reindex on /readyz, and answers 503 there once shutting down', async () => {
    let shuttingDown = false;
    const app = createApp({
      es: after.runtime.es,
      temporal: after.temporal.connection,
      namespace: after.config.TEMPORAL_NAMESPACE,
      jobs: after.jobs,
      keys: [],
      log: after.runtime.log,
      search: searchDepsOf(after.runtime),
      shuttingDown: () => shuttingDown,
    });
    const server: Server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
      const ready = await fetch(url);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: { embedding: string } }).checks.embedding).toMatch(/^reindex needed: .*all-MiniLM-L6-v2/);
      shuttingDown = true;
      const draining = await fetch(url);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toEqual({ status: 'shutting_down' });
      expect((await fetch(url.replace('readyz', 'livez'))).status).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('accepts an ingest during the mismatch and holds it back, retrying, before any vector is written', async () => {
    const accepted = await after.api('POST', '/v1/conversations', {
      body: conversation('kitchen', [['Melanie', 'The sourdough starter needs feeding twice a day with rye flour.']]),
    });
    expect(accepted.status).toBe(202);
    pendingJob = accepted.body.job_id;
    const handle = after.jobs.handle('acme', pendingJob);
    const failure = await waitFor('the held-back stage to report why', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.find((activity) => activity.lastFailure?.message)?.lastFailure?.message ?? undefined;
    }, { intervalMs: 500 });
    expect(failure).toMatch(/all-MiniLM-L6-v2 \(384 dims\).*openai\/text-embedding-3-small \(1536 dims\)/);
    expect(failure).toMatch(/waits until a reindex/);
    expect((await after.jobs.progress('acme', pendingJob))?.status).not.toMatch(/completed|failed/);
    expect((await allMemories()).filter((memory) => memory.provenance.job_id === pendingJob)).toEqual([]);
    expect(embeddedInputs().some((input) => /sourdough/.test(input))).toBe(false);
  });

  it('edits a memory during the mismatch without giving it a vector the index cannot take', async () => {
    const edited = [...oldMemories].sort((a, b) => b.id.localeCompare(a.id))[0]!;
    const patched = await after.api('PATCH', `/v1/memories/${edited.id}`, { body: { content: 'The worms arrived and the compost smells of forest floor now.' } });
    expect(patched.status).toBe(200);
    const stored = await after.runtime.es.get<{ text: string; embedding?: number[]; embedding_model?: string }>({ index: memoriesAlias(), id: edited.id });
    expect(stored._source).toMatchObject({ text: 'The worms arrived and the compost smells of forest floor now.' });
    expect(stored._source?.embedding).toBeUndefined();
    expect(stored._source?.embedding_model).toBeUndefined();
  });

  it('reindexes into a new version built for the new model, re-embedding every memory and entity once; the held job then completes', async () => {
    const started = Date.now();
    let deleted: string | undefined;
    let lateJob: string | undefined;
    afterFirstCopy = async (ids) => {
      // A memory copied in the first batch is then deleted through the API, from the still-live old index.
      deleted = ids[0];
      expect((await after.api('DELETE', `/v1/memories/${deleted}`)).status).toBe(204);
      // A worker still on the old model writes its vectors to the old index behind the walk's back.
      const late = await before.api('POST', '/v1/conversations', { body: conversation('late', [['Caroline', 'The heron came back to the pond at dawn on Sunday.']]) });
      lateJob = late.body.job_id;
      expect((await before.waitForJob('acme', lateJob!)).status).toBe('completed');
    };
    const accepted = await after.api('POST', '/v1/backfills', { key: after.operatorKey, body: { backfill: 'reindex', batch_size: 2, page_size: 4, concurrency: 1 } });
    // One at a time: a second reindex while this one runs is refused.
    expect((await after.api('POST', '/v1/backfills', { key: after.operatorKey, body: { backfill: 'reindex' } })).status).toBe(409);
    expect(accepted.status).toBe(202);
    const result = await waitFor(
      'the reindex to finish',
      async () => {
        const progress = await after.api('GET', `/v1/backfills/${accepted.body.id}`, { key: after.operatorKey });
        return progress.body.status === 'running' ? undefined : progress.body;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const reindexMs = Date.now() - started;
    expect(result).toMatchObject({ status: 'completed', total: oldMemories.length, processed: oldMemories.length, failed: 0 });
    expect(result.reindex).toMatchObject({ source: `${memoriesAlias()}-v1`, target: `${memoriesAlias()}-v2`, swapped: true, dropped: 1 });
    expect(result.reindex.caught_up).toBeGreaterThanOrEqual(1);
    expect(result.reindex.entities).toMatchObject({ source: `${entitiesAlias()}-v1`, target: `${entitiesAlias()}-v2` });
    expect(result.reindex.entities.copied).toBeGreaterThan(0);
    expect(deleted).toBeDefined();

    // Both aliases moved, and the indices behind them record the new model.
    expect(Object.keys(await after.runtime.es.indices.getAlias({ name: memoriesAlias() }))).toEqual([`${memoriesAlias()}-v2`]);
    expect(Object.keys(await after.runtime.es.indices.getAlias({ name: entitiesAlias() }))).toEqual([`${entitiesAlias()}-v2`]);
    expect(await storedEmbedding(after.runtime.es, memoriesAlias())).toEqual(OPENAI);
    expect(await storedEmbedding(after.runtime.es, entitiesAlias())).toEqual(OPENAI);
    // Still refreshed every second, as they are searched while written.
    const settings = await after.runtime.es.indices.getSettings({ index: `${memoriesAlias()},${entitiesAlias()}`, name: 'index.refresh_interval' });
    expect(Object.values(settings).map((index) => index.settings?.index?.refresh_interval)).toEqual(['1s', '1s']);

    // The held-back job completes on its own after the swap.
    const job = await after.waitForJob('acme', pendingJob, 90_000);
    expect(job.status).toBe('completed');
    const jobDoneMs = Date.now() - started;

    // Every memory: the new model's vector of the new dims, the deleted one gone for good.
    const memories = await allMemories();
    const fresh = memories.filter((memory) => memory.provenance.job_id === pendingJob);
    expect(fresh.length).toBeGreaterThan(0);
    const caughtUp = memories.filter((memory) => memory.provenance.job_id === lateJob);
    expect(caughtUp.length).toBeGreaterThan(0);
    expect(memories).toHaveLength(oldMemories.length - 1 + fresh.length + caughtUp.length);
    expect(memories.map((memory) => memory.id)).not.toContain(deleted);
    expect((await after.api('GET', `/v1/memories/${deleted}`)).status).toBe(404);
    for (const memory of memories) {
      expect([memory.id, memory.embedding_model, memory.embedding?.length]).toEqual([memory.id, OPENAI.model, OPENAI.dims]);
    }
    // Exactly once: each memory's text (with its neighbouring turns) went to the new model once (the
    // deleted one was copied once too).
    const inputs = embeddedInputs();
    const expected = new Map<string, number>();
    for (const text of [...memories, oldMemories.find((memory) => memory.id === deleted)!].map(embeddingText)) {
      expected.set(text, (expected.get(text) ?? 0) + 1);
    }
    for (const [text, times] of expected) expect([text, inputs.filter((input) => input === text).length]).toEqual([text, times]);

    const entities = await after.runtime.es.search<{ embedding?: number[]; embedding_model?: string }>({ index: entitiesAlias(), size: 1000 });
    expect(entities.hits.hits.length).toBeGreaterThan(0);
    for (const entity of entities.hits.hits) expect([entity._id, entity._source?.embedding_model, entity._source?.embedding?.length]).toEqual([entity._id, OPENAI.model, OPENAI.dims]);
    console.log(`model change: ${oldMemories.length} memories + ${result.reindex.entities.copied} entities reindexed in ${reindexMs} ms; held job completed ${jobDoneMs} ms after the reindex started`);
  });

  it('searches with kNN again once the alias has swapped, while the old-model deployment now falls back', async () => {
    const hybrid = await waitFor('the mismatch to clear', async () => {
      const answer = await search({ query: 'sourdough rye flour', mode: 'hybrid' });
      return answer.body.warnings ? undefined : answer;
    }, { timeoutMs: 15_000, intervalMs: 500 });
    expect(hybrid.status).toBe(200);
    expect(hybrid.body.methods).toEqual(['bm25', 'knn']);
    expect(after.runtime.embeddingMismatch).toBeUndefined();

    // The double's vectors are a function of the text: a memory's own text is its nearest neighbour.
    const target = (await allMemories()).find((memory) => memory.provenance.job_id === pendingJob)!;
    const knn = await search({ query: target.text, mode: 'knn', top_k: 3 });
    expect(knn.status).toBe(200);
    expect(knn.body.warnings).toBeUndefined();
    expect(knn.body.results[0].id).toBe(target.id);
    expect(knn.body.results[0].ranks).toEqual({ knn: 1 });

    // The deployment still on the local model now meets an index it did not build: it answers with BM25.
    expect(await before.runtime.embeddingMatch.mismatchOf('memories', { fresh: true })).toMatchObject({ stored: OPENAI, configured: LOCAL });
    const old = await before.api('POST', '/v1/search', { body: { query: 'sourdough rye flour', mode: 'hybrid' } });
    expect(old.body.methods).toEqual(['bm25']);
    expect(old.body.warnings[0]).toMatch(/BM25 only/);
  });
});
