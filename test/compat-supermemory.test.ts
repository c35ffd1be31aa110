import { ApplicationFailure } from '@temporalio/common';
import { refuseSecondBatchOnce } from './support/faults';
import { startHarness, type Harness } from './support/harness';

async function memoriesOf(h: Harness, tenant: string, conversationId: string) {
  const { hits } = await h.runtime.es.search<{ id: string; text: string; provenance: { job_id: string; turn_start: number } }>({
    index: h.runtime.indices.memories,
    query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.document_id': conversationId } }] } },
    size: 100,
  });
  return hits.hits.map((hit) => hit._source!);
}

describe('supermemory surface (/compat/supermemory)', () => {
  let h: Harness;
  const failedOnce = new Set<string>();
  const refuseBatch = refuseSecondBatchOnce((request) => request.metadata?.test === 'refuse-batch-once');
  beforeAll(async () => {
    h = await startHarness({
      // Faults injected into the pipeline (not test doubles): a conversation whose metadata says
      // "fail-once" fails its first job for good; one that says "refuse-batch-once" has its second
      // extraction batch refused in its first job (small batches, so a long conversation has several).
      env: { BATCH_SIZE: '2' },
      wrapActivities: (activities) => ({
        ...refuseBatch(activities),
        parseSource: async (input, fetched) => {
          if (input.request.metadata?.test === 'fail-once' && !failedOnce.has(input.sourceId)) {
            failedOnce.add(input.sourceId);
            throw ApplicationFailure.nonRetryable('injected failure', 'injected');
          }
          return activities.parseSource(input, fetched);
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  const first = [
    { role: 'user', content: 'My sister Lena is visiting Kyoto in October.' },
    { role: 'assistant', content: [{ type: 'text', text: 'Kyoto in autumn is beautiful.' }, { type: 'image_url', imageUrl: { url: 'https://example.com/maple.jpg' } }] },
  ];

  it('ingests a conversation, then on re-send adds only the new messages and ignores repeats', async () => {
    const body = { conversationId: 'conv-kyoto', messages: first, containerTags: ['family'], metadata: { source: 'chat', priority: 2, pinned: true } };
    const created = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ conversationId: 'conv-kyoto', status: 'queued', messagesAdded: 2 });
    expect((await h.waitForJob('acme', created.body.jobId)).status).toBe('completed');
    const initial = await memoriesOf(h, 'acme', 'conv-kyoto');
    expect(initial.length).toBeGreaterThan(0);
    expect(initial.some((memory) => memory.text.includes('maple.jpg'))).toBe(true);

    const same = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ status: 'unchanged', jobId: null, messagesAdded: 0 });

    const more = await h.api('POST', '/compat/supermemory/v4/conversations', {
      body: { ...body, messages: [...first, { role: 'user', content: 'She also wants to see the Fushimi Inari shrine.' }] },
    });
    expect(more.body).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 2 });
    expect((await h.waitForJob('acme', more.body.jobId)).status).toBe('completed');
    const after = await memoriesOf(h, 'acme', 'conv-kyoto');
    const added = after.filter((memory) => memory.provenance.job_id === more.body.jobId);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((memory) => memory.text.includes('Fushimi'))).toBe(true);
    expect(after.length).toBe(initial.length + added.length);
    const search = await h.api('POST', '/v1/search', { body: { query: 'Fushimi Inari shrine', mode: 'bm25', filters: { container_tags: ['family'] } } });
    expect(search.body.results.length).toBeGreaterThan(0);

    // The same conversationId under another tenant is another conversation.
    const other = await h.api('POST', '/compat/supermemory/v4/conversations', { key: h.keys.globex, body });
    expect(other.body).toMatchObject({ status: 'queued', messagesAdded: 2 });
    expect((await h.api('GET', `/v1/jobs/${more.body.jobId}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('replaces an edited message\'s memories, drops a removed message\'s, and leaves unchanged ones alone', async () => {
    const conversation = [
      { role: 'user', content: 'My cousin Ines is moving to Lisbon next spring.' },
      { role: 'assistant', content: 'Lisbon has lovely tiled facades.' },
      { role: 'user', content: 'She adopted a greyhound called Biscuit.' },
    ];
    const body = { conversationId: 'conv-edit', messages: conversation };
    const created = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect((await h.waitForJob('acme', created.body.jobId)).status).toBe('completed');
    const before = await memoriesOf(h, 'acme', 'conv-edit');
    const untouched = before.filter((memory) => memory.provenance.turn_start > 0).map((memory) => memory.id).sort();
    expect(before.some((memory) => memory.text.includes('moving to Lisbon'))).toBe(true);

    // The first message is edited; the other two are sent again unchanged.
    const edited = [{ role: 'user', content: 'My cousin Ines is moving to Porto next spring.' }, ...conversation.slice(1)];
    const update = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { ...body, messages: edited } });
    expect(update.status).toBe(200);
    expect(update.body).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 2, memoriesReplaced: expect.any(Number) });
    expect(update.body.memoriesReplaced).toBeGreaterThan(0);
    expect((await h.waitForJob('acme', update.body.jobId)).status).toBe('completed');
    const after = await memoriesOf(h, 'acme', 'conv-edit');
    expect(after.some((memory) => memory.text.includes('moving to Lisbon'))).toBe(false);
    expect(after.some((memory) => memory.text.includes('moving to Porto'))).toBe(true);
    // Only the edited message was ingested again; the others kept their memories, not duplicated.
    expect(after.filter((memory) => memory.provenance.job_id === update.body.jobId).every((memory) => memory.provenance.turn_start === 0)).toBe(true);
    expect(after.filter((memory) => memory.provenance.turn_start > 0).map((memory) => memory.id).sort()).toEqual(untouched);
    const oldText = await h.api('POST', '/v1/search', { body: { query: 'Ines moving to Lisbon next spring', mode: 'bm25', top_k: 20 } });
    expect(oldText.body.results.filter((result: { text: string }) => result.text.includes('moving to Lisbon'))).toEqual([]);

    // Sent again without the last message: the conversation is what was sent, so Biscuit is forgotten.
    const shortened = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { ...body, messages: edited.slice(0, 2) } });
    expect(shortened.body).toMatchObject({ status: 'updated', jobId: null, messagesAdded: 0, messagesUnchanged: 2 });
    expect(shortened.body.memoriesReplaced).toBeGreaterThan(0);
    const remaining = await memoriesOf(h, 'acme', 'conv-edit');
    expect(remaining.some((memory) => memory.text.includes('Biscuit'))).toBe(false);
    expect(remaining.length).toBe(after.filter((memory) => memory.provenance.turn_start < 2).length);
    const biscuit = await h.api('POST', '/v1/search', { body: { query: 'greyhound Biscuit', mode: 'bm25' } });
    expect(biscuit.body.results.filter((result: { text: string }) => result.text.includes('Biscuit'))).toEqual([]);

    // And the same (shortened) conversation again changes nothing.
    const again = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { ...body, messages: edited.slice(0, 2) } });
    expect(again.body).toMatchObject({ status: 'unchanged', jobId: null, memoriesReplaced: 0 });
  });

  it('ingests again, on re-send, the messages of a job that failed, instead of answering unchanged', async () => {
    const body = {
      conversationId: 'conv-failed-once',
      messages: [{ role: 'user', content: 'Our quartermaster Ignatius stores the spare sails in the forward hold.' }],
      metadata: { test: 'fail-once' },
    };
    const created = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect(created.body).toMatchObject({ status: 'queued', messagesAdded: 1 });
    expect((await h.waitForJob('acme', created.body.jobId)).status).toBe('failed');
    expect(await memoriesOf(h, 'acme', 'conv-failed-once')).toHaveLength(0);

    const again = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect(again.body).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 0 });
    expect((await h.waitForJob('acme', again.body.jobId)).status).toBe('completed');
    const stored = await memoriesOf(h, 'acme', 'conv-failed-once');
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.every((memory) => memory.provenance.job_id === again.body.jobId)).toBe(true);

    // Now stored: the same messages again change nothing.
    const third = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect(third.body).toMatchObject({ status: 'unchanged', jobId: null });
  });

  it('ingests again, on re-send, the messages of a job that completed with a batch left out, without duplicates', async () => {
    const long = (topic: string) => `${topic}: ${'we compared the schedules, the costs and the crew rotas for the coming season in detail. '.repeat(18)}`;
    const body = {
      conversationId: 'conv-partial',
      messages: ['Harbour', 'Ferry', 'Lighthouse', 'Market', 'Bridge'].map((topic, i) => ({ role: i % 2 ? 'assistant' : 'user', content: long(topic) })),
      metadata: { test: 'refuse-batch-once' },
    };
    const first = (await h.api('POST', '/compat/supermemory/v4/conversations', { body })).body;
    const partial = await h.waitForJob('acme', first.jobId);
    expect(partial).toMatchObject({ status: 'completed', errors: [{ stage: 'extract', code: 'injected' }] });
    expect(partial.counts.chunks).toBeGreaterThan(3);

    const again = (await h.api('POST', '/compat/supermemory/v4/conversations', { body })).body;
    expect(again).toMatchObject({ status: 'queued', messagesAdded: 5 });
    const whole = await h.waitForJob('acme', again.jobId);
    expect(whole).toMatchObject({ status: 'completed', errors: [] });
    const stored = await memoriesOf(h, 'acme', 'conv-partial');
    expect(stored).toHaveLength(whole.counts.chunks);
    expect(stored.every((memory) => memory.provenance.job_id === again.jobId)).toBe(true);
    expect((await h.api('POST', '/compat/supermemory/v4/conversations', { body })).body).toMatchObject({ status: 'unchanged' });
  });

  it('applies new containerTags and metadata to the stored memories when only those change', async () => {
    const messages = [{ role: 'user', content: 'The allotment by the canal grows seventeen kinds of squash.' }];
    const send = async (containerTags: string[], metadata: Record<string, string>) =>
      (await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'conv-retag', messages, containerTags, metadata } })).body;
    const created = await send(['garden'], { source: 'chat', mood: 'calm' });
    expect((await h.waitForJob('acme', created.jobId)).status).toBe('completed');

    const retagged = await send(['allotment'], { source: 'email' });
    expect(retagged).toMatchObject({ status: 'updated', jobId: null, messagesAdded: 0 });
    const stored = await h.runtime.es.search<{ scope: { container_tags?: string[] }; metadata?: Record<string, unknown> }>({
      index: h.runtime.indices.memories,
      query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.document_id': 'conv-retag' } }] } },
    });
    expect(stored.hits.hits.length).toBeGreaterThan(0);
    for (const hit of stored.hits.hits) expect(hit._source).toMatchObject({ scope: { container_tags: ['allotment'] }, metadata: { source: 'email' } });
    expect(stored.hits.hits.every((hit) => !('mood' in (hit._source!.metadata ?? {})))).toBe(true);
    const search = async (tag: string) =>
      (await h.api('POST', '/v1/search', { body: { query: 'allotment canal squash', mode: 'bm25', filters: { container_tags: [tag] } } })).body.results.length;
    expect(await search('allotment')).toBeGreaterThan(0);
    expect(await search('garden')).toBe(0);

    expect(await send(['allotment'], { source: 'email' })).toMatchObject({ status: 'unchanged', jobId: null });
  });

  it('keeps what tool calls an assistant made, and counts a changed call as an edit', async () => {
    const call = (city: string) => [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ city }) } }];
    const messages = (city: string) => [
      { role: 'user', content: 'Will it rain at the regatta tomorrow?' },
      { role: 'assistant', content: '', tool_calls: call(city) },
      { role: 'tool', content: 'Light rain expected, 14°C.', tool_call_id: 'call_1' },
    ];
    const created = (await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'conv-tools', messages: messages('Cowes') } })).body;
    expect((await h.waitForJob('acme', created.jobId)).status).toBe('completed');
    const texts = (await memoriesOf(h, 'acme', 'conv-tools')).map((memory) => memory.text).join('\n');
    expect(texts).toContain('[tool call: get_weather({"city":"Cowes"})]');

    const edited = (await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'conv-tools', messages: messages('Falmouth') } })).body;
    expect(edited).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 2 });
  });

  it('answers bad requests with 400 {error, details} and missing keys with 401', async () => {
    const bad = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: '', messages: [{ role: 'robot', content: 'x' }] } });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: expect.any(String), details: expect.stringMatching(/conversationId/) });
    const badMeta = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'c', messages: [{ role: 'user', content: 'x' }], metadata: { nested: { no: 1 } } } });
    expect(badMeta.status).toBe(400);
    const anonymous = await h.api('POST', '/compat/supermemory/v4/conversations', { key: null, body: {} });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe('Unauthorized');
  });
});

describe('supermemory surface with several turns per chunk', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { CONVERSATION_TURNS_PER_CHUNK: '3' } });
  });
  afterAll(async () => h?.close());

  it('re-ingests the unchanged messages that shared a memory with an edited one, so nothing they said is lost', async () => {
    const messages = [
      { role: 'user', content: 'Our team offsite is in Tallinn this year.' },
      { role: 'assistant', content: 'Tallinn has a charming old town.' },
      { role: 'user', content: 'Marta is booking the sauna evening.' },
    ];
    const body = { conversationId: 'conv-chunked', messages };
    const created = await h.api('POST', '/compat/supermemory/v4/conversations', { body });
    expect((await h.waitForJob('acme', created.body.jobId)).status).toBe('completed');
    const before = await memoriesOf(h, 'acme', 'conv-chunked');
    expect(before.some((memory) => memory.text.includes('charming old town'))).toBe(true);

    const edited = [messages[0], { role: 'assistant', content: 'Tallinn has a lively harbour.' }, messages[2]];
    const update = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { ...body, messages: edited } });
    expect(update.body).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 2 });
    expect((await h.waitForJob('acme', update.body.jobId)).status).toBe('completed');
    const after = await memoriesOf(h, 'acme', 'conv-chunked');
    expect(after.some((memory) => memory.text.includes('charming old town'))).toBe(false);
    expect(after.some((memory) => memory.text.includes('lively harbour'))).toBe(true);
    // The unchanged messages' words survive (ingested again with the edit) and are not duplicated.
    expect(after.some((memory) => memory.text.includes('sauna evening'))).toBe(true);
    expect(after.every((memory) => memory.provenance.job_id === update.body.jobId)).toBe(true);
    expect(new Set(after.map((memory) => memory.text)).size).toBe(after.length);
  });
  it('names an image sent inline as a data: URL by its type and size, not its base64, and still sees it change', async () => {
    const png = (fill: number) => `data:image/png;base64,${Buffer.alloc(30_000, fill).toString('base64')}`;
    const photo = (fill: number) => [{ role: 'user', content: [{ type: 'text', text: 'What is in this photo of my cat Miso?' }, { type: 'image_url', imageUrl: { url: png(fill) } }] }];
    const sent = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'conv-miso', messages: photo(1) } });
    expect((await h.waitForJob('acme', sent.body.jobId)).status).toBe('completed');
    const texts = (await memoriesOf(h, 'acme', 'conv-miso')).map((memory) => memory.text).join('\n');
    expect(texts).toContain('[image: image/png, 29 KB, inline]');
    expect(texts).not.toContain('base64');
    expect(texts.length).toBeLessThan(1_000);
    // Another image under the same words is an edit of the message.
    const changed = await h.api('POST', '/compat/supermemory/v4/conversations', { body: { conversationId: 'conv-miso', messages: photo(2) } });
    expect(changed.body).toMatchObject({ status: 'queued', messagesAdded: 1, messagesUnchanged: 0 });
    await h.waitForJob('acme', changed.body.jobId);
  });
});
