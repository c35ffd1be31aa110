import { storedEmbedding } from '../lib/elasticsearch/indices';
import { startHarness, type Harness } from './support/harness';
import type { Embedder } from '../lib/models/embedder';
import { searchDepsOf } from '../lib/runtime';
import { searchMemories } from '../lib/search/execute';
import { planFor } from '../lib/search/plan';

describe('hybrid search: POST /v1/search over real Elasticsearch with the local embedding model', () => {
  let h: Harness;
  const ingest = async (body: unknown, key?: string) => {
    const accepted = await h.api('POST', '/v1/conversations', { body, key });
    expect(accepted.status).toBe(202);
    const progress = await h.waitForJob(key === h.keys.globex ? 'globex' : 'acme', accepted.body.job_id);
    expect(progress.status).toBe('completed');
  };
  const search = (body: unknown, key?: string) => h.api('POST', '/v1/search', { body, key });

  beforeAll(async () => {
    h = await startHarness();
    await ingest({
      conversation_id: 'trip',
      session_date: '2023-05-08T13:56:00Z',
      scope: { space_id: 'travel', user_id: 'u1' },
      metadata: { channel: 'web' },
      messages: [
        { role: 'user', name: 'Caroline', content: 'I adopted two puppies from the shelter last week.', turn_id: 'D1:1' },
        { role: 'user', name: 'Melanie', content: 'Which city are you flying to next?', turn_id: 'D1:2' },
        { role: 'user', name: 'Caroline', content: 'Lisbon! The flights to Portugal were cheap.', turn_id: 'D1:3' },
        { role: 'user', name: 'Melanie', content: 'I really love pottery classes, they calm me down.', turn_id: 'D1:4' },
      ],
    });
    await ingest({
      conversation_id: 'other-space',
      scope: { space_id: 'work', user_id: 'u2' },
      messages: [{ role: 'user', name: 'Dana', content: 'The quarterly budget review moved to Lisbon.', turn_id: 'W1:1' }],
    });
    await ingest({ messages: [{ role: 'user', name: 'Eve', content: 'Globex secret: we also love dogs and puppies.', turn_id: 'G1:1' }] }, h.keys.globex);
  });
  afterAll(async () => h?.close());

  it('records the embedding model and its dimensions on the memories index', async () => {
    expect(await storedEmbedding(h.runtime.es, h.runtime.indices.memories)).toEqual({ model: 'all-MiniLM-L6-v2', dims: 384 });
  });

  it('finds by meaning with knn where no word is shared, and answers with provenance', async () => {
    const response = await search({ query: 'Does anyone have a dog?', mode: 'knn', top_k: 3, filters: { space_id: 'travel' } });
    expect(response.status).toBe(200);
    const top = response.body.results[0];
    expect(top.text).toContain('puppies');
    expect(top.provenance.turn_ids).toEqual(['D1:1']);
    expect(top.provenance.speakers).toEqual(['Caroline']);
    expect(top).toEqual(expect.objectContaining({ id: expect.any(String), score: expect.any(Number), type: expect.any(String) }));
    expect(top.embedding).toBeUndefined();
    expect(top.context).toBeUndefined();
  });

  it('answers with BM25 alone, saying why, when the embedding model fails or does not answer in time', async () => {
    // Test doubles for a remote embedding provider that is down, and one that never answers.
    const failing: Embedder = { model: 'all-MiniLM-L6-v2', dims: 384, embed: () => Promise.reject(new Error('OpenAI answered 500 five times')) };
    const hanging: Embedder = { model: 'all-MiniLM-L6-v2', dims: 384, embed: () => new Promise<number[][]>(() => undefined) };
    for (const [embedder, reason] of [[failing, /OpenAI answered 500 five times/], [hanging, /no answer within 5 s/]] as const) {
      for (const mode of ['hybrid', 'knn'] as const) {
        const asked = Date.now();
        const outcome = await searchMemories({ ...searchDepsOf(h.runtime), embedder }, { tenant: 'acme', query: 'Lisbon flights', plan: planFor(mode, 5), filters: { space_id: 'travel' } });
        expect(Date.now() - asked).toBeLessThan(8_000);
        expect(outcome.methods).toEqual(['bm25']);
        expect(outcome.warnings).toEqual([expect.stringMatching(reason)]);
        expect(outcome.results[0]!.provenance.turn_ids).toEqual(['D1:3']);
      }
    }
  }, 60_000);

  it('finds exact words with bm25, and hybrid fuses both rankings', async () => {
    const bm25 = await search({ query: 'Lisbon flights', mode: 'bm25', filters: { space_id: 'travel' } });
    expect(bm25.body.results[0].provenance.turn_ids).toEqual(['D1:3']);
    const hybrid = await search({ query: 'puppies adopted from a shelter', top_k: 2 });
    expect(hybrid.body.mode).toBe('hybrid');
    expect(hybrid.body.results).toHaveLength(2);
    expect(hybrid.body.results[0].provenance.turn_ids).toEqual(['D1:1']);
    expect(hybrid.body.results[0].ranks).toEqual({ bm25: 1, knn: 1 });
  });

  it('keeps first the memory both methods rank first: turns borrowing from their neighbours do not displace it', async () => {
    await ingest({
      session_id: 'easter',
      scope: { user_id: 'u-rh' },
      messages: [
        { role: 'user', name: 'Ann', content: 'Did you see the bread bowl soup at the Easter market?' },
        { role: 'user', name: 'Bob', content: 'Yes, the soup in a bread bowl was served every Easter there.' },
        { role: 'user', name: 'Ann', content: 'What was the soup called again?' },
        { role: 'user', name: 'Bob', content: 'I forget, something sour and Polish.' },
      ],
    });
    const document = await h.api('POST', '/v1/documents', { body: { content: 'Żurek is served in a bread bowl every Easter.', format: 'TXT', scope: { user_id: 'u-rh' } } });
    await h.waitForJob('acme', document.body.job_id);
    const query = { query: 'Żurek is served in a bread bowl every Easter.', top_k: 4, filters: { user_id: 'u-rh' } };
    for (const mode of ['bm25', 'knn']) expect((await search({ ...query, mode })).body.results[0].text).toMatch(/^Żurek/);
    const hybrid = (await search(query)).body.results;
    expect(hybrid[0]).toMatchObject({ text: expect.stringMatching(/^Żurek/), ranks: { bm25: 1, knn: 1 } });
    // The turns still lend each other their share below it.
    expect(hybrid.length).toBe(4);
  });

  it('never returns another tenant’s memories, in any mode', async () => {
    for (const mode of ['hybrid', 'bm25', 'knn']) {
      const response = await search({ query: 'love dogs and puppies', mode, top_k: 20 });
      expect(response.body.results.map((r: any) => r.text).join(' ')).not.toContain('Globex');
      const theirs = await search({ query: 'love dogs and puppies', mode, top_k: 20 }, h.keys.globex);
      expect(theirs.body.results.map((r: any) => r.text)).toEqual(['Eve: Globex secret: we also love dogs and puppies.']);
    }
  });

  it('filters by when a turn was said, by entity, and by a customer\'s scope; results say when they were edited', async () => {
    // No session date: each turn's own timestamp says when it happened.
    await ingest({
      conversation_id: 'stamped',
      scope: { space_id: 'stamps' },
      messages: [
        { role: 'user', name: 'Ruth', content: 'The greenhouse tomatoes finally ripened.', timestamp: '2021-03-10T09:00:00Z' },
        { role: 'user', name: 'Ruth', content: 'The greenhouse roof needs new panels.', timestamp: '2021-09-02T09:00:00Z' },
      ],
    });
    const march = await search({ query: 'greenhouse', mode: 'bm25', filters: { space_id: 'stamps', occurred_after: '2021-03-01', occurred_before: '2021-03-31' } });
    expect(march.body.results.map((r: any) => r.text)).toEqual([expect.stringContaining('tomatoes')]);
    expect(march.body.results[0].updated_at).toBeNull();

    // A customer's memory held by no one user is every one of its users'.
    await ingest({ conversation_id: 'cust-wide', scope: { customer_id: 'c1' }, messages: [{ role: 'user', content: 'The c1 warehouse closes at six.' }] });
    await ingest({ conversation_id: 'cust-u9', scope: { customer_id: 'c1', user_id: 'u9' }, messages: [{ role: 'user', content: 'u9 keeps the warehouse keys.' }] });
    const asUser = async (user: string) =>
      (await search({ query: 'warehouse', mode: 'bm25', filters: { customer_id: 'c1', user_id: user } })).body.results.map((r: any) => r.text).sort();
    expect(await asUser('u9')).toEqual([expect.stringContaining('closes at six'), expect.stringContaining('keeps the warehouse keys')]);
    expect(await asUser('u8')).toEqual([expect.stringContaining('closes at six')]);

    // Memories that mention an entity.
    const entities = (await h.api('GET', '/v1/entities?page_size=100')).body.entities as { id: string; name: string }[];
    const caroline = entities.find((entity) => entity.name === 'Caroline')!;
    const hers = await search({ query: 'Lisbon puppies pottery', mode: 'bm25', top_k: 20, filters: { entity_ids: [caroline.id] } });
    expect(hers.body.results.length).toBeGreaterThan(0);
    expect(hers.body.results.every((r: any) => r.entities.some((entity: { id: string }) => entity.id === caroline.id))).toBe(true);
  });

  it('forgets a deleted or replaced turn in its neighbours too: its words are no longer found through them', async () => {
    await ingest({
      conversation_id: 'neighbours',
      scope: { space_id: 'neighbours' },
      messages: [
        { role: 'user', name: 'Ida', content: 'Our Zanzibar ferry tickets are booked.' },
        { role: 'user', name: 'Jon', content: 'Great, which day do we leave?' },
        { role: 'user', name: 'Ida', content: 'After the crossing, the quokka tour.' },
      ],
    });
    const find = async (query: string) =>
      (await search({ query, mode: 'bm25', top_k: 10, filters: { space_id: 'neighbours' } })).body.results as { id: string; text: string }[];
    const turns = await find('Zanzibar ferry quokka tour which day');
    const first = turns.find((r) => r.text.includes('Zanzibar'))!;
    const last = turns.find((r) => r.text.includes('quokka'))!;
    // The middle turn holds both as context: found by either word.
    expect((await find('Zanzibar')).map((r) => r.text)).toEqual(expect.arrayContaining([expect.stringContaining('which day')]));

    expect((await h.api('DELETE', `/v1/memories/${first.id}`)).status).toBe(204);
    expect(await find('Zanzibar')).toEqual([]);
    expect((await h.api('PATCH', `/v1/memories/${last.id}`, { body: { content: 'Ida: After the crossing, the wombat tour.' } })).status).toBe(200);
    expect(await find('quokka')).toEqual([]);
    const wombat = (await find('wombat')).map((r) => r.text);
    expect(wombat).toHaveLength(2);
    expect(wombat).toEqual(expect.arrayContaining([expect.stringContaining('which day'), expect.stringContaining('wombat tour')]));
    // The neighbour's own half is rewritten exactly: text that looks like a replacement pattern stays text.
    expect((await h.api('PATCH', `/v1/memories/${last.id}`, { body: { content: "Ida: It costs $&, not $'." } })).status).toBe(200);
    const middle = turns.find((r) => r.text.includes('which day'))!;
    const stored = await h.runtime.es.get<{ context?: string }>({ index: h.runtime.indices.memories, id: middle.id });
    expect(stored._source!.context).toBe("Ida: It costs $&, not $'.");
  });

  it('rewrites a neighbour\'s context only where it holds the turn whole, and only within the turn\'s own job', async () => {
    const doc = (id: string, job: string, position: number, text: string, context?: string) => ({
      id, tenant: 'acme', text, context, type: 'episode', confidence: 1, entities: [], scope: { space_id: 'bounds' },
      provenance: { source_id: 'src_bounds', job_id: job, turn_start: position, turn_end: position, chunk_index: position },
      created_at: new Date().toISOString(),
    });
    const docs = [
      doc('mem_bounds_1', 'job-a', 1, 'user: yes', 'assistant: Shall I book?'),
      // Same job, after the turn: its context begins with a longer line that starts like it.
      doc('mem_bounds_2', 'job-a', 2, 'assistant: Booked.', 'user: yes, a taxi\nuser: thanks'),
      // Another job of the same source at the next position: never held this turn.
      doc('mem_bounds_3', 'job-b', 2, 'user: yes, a taxi', 'user: yes'),
    ];
    await h.runtime.es.bulk({ refresh: 'wait_for', operations: docs.flatMap((d) => [{ index: { _index: h.runtime.indices.memories, _id: d.id } }, d]) });
    expect((await h.api('DELETE', '/v1/memories/mem_bounds_1')).status).toBe(204);
    const contextOf = async (id: string) => (await h.runtime.es.get<{ context?: string }>({ index: h.runtime.indices.memories, id }))._source!.context;
    expect(await contextOf('mem_bounds_2')).toBe('user: yes, a taxi\nuser: thanks');
    expect(await contextOf('mem_bounds_3')).toBe('user: yes');
  });

  it('filters inside every method: scope fields, memory type, metadata and dates', async () => {
    for (const mode of ['bm25', 'knn', 'hybrid']) {
      const work = await search({ query: 'Lisbon', mode, top_k: 20, filters: { space_id: 'work' } });
      expect(work.body.results.map((r: any) => r.provenance.turn_ids[0])).toEqual(['W1:1']);
    }
    const byUser = await search({ query: 'Lisbon', mode: 'knn', top_k: 20, filters: { user_id: 'u1' } });
    expect(byUser.body.results.every((r: any) => r.scope.user_id === 'u1')).toBe(true);
    const preferences = await search({ query: 'pottery', top_k: 20, filters: { types: ['preference'] } });
    expect(preferences.body.results.map((r: any) => r.provenance.turn_ids[0])).toEqual(['D1:4']);
    const web = await search({ query: 'Lisbon', top_k: 20, filters: { metadata: { channel: 'web' } } });
    expect(web.body.results.map((r: any) => r.provenance.turn_ids[0])).toContain('D1:3');
    expect(web.body.results.every((r: any) => r.metadata?.channel === 'web')).toBe(true);
    const after = await search({ query: 'Lisbon', top_k: 20, filters: { occurred_after: '2024-01-01' } });
    expect(after.body.results).toEqual([]);
    const may = await search({ query: 'puppies shelter', top_k: 20, filters: { space_id: 'travel', occurred_after: '2023-04-01', occurred_before: '2023-05-31' } });
    expect(may.body.results[0].provenance.turn_ids).toEqual(['D1:1']);
  });

  it('answers bad requests with a 400 naming the problem', async () => {
    expect((await search({ query: '   ' })).status).toBe(400);
    const badMode = await search({ query: 'x', mode: 'fuzzy' });
    expect(badMode.status).toBe(400);
    expect(badMode.body.error.message).toMatch(/mode/);
    const unknownFilter = await search({ query: 'x', filters: { tenant: 'globex' } });
    expect(unknownFilter.status).toBe(400);
    expect((await search({ query: 'x', top_k: 0 })).status).toBe(400);
    expect((await search({ query: 'x', filters: { created_after: 'last tuesday' } })).status).toBe(400);
    expect((await h.api('POST', '/v1/search', { key: null, body: { query: 'x' } })).status).toBe(401);
  });
});
