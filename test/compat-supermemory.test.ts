import { startHarness, type Harness } from './support/harness';

async function memoriesOf(h: Harness, tenant: string, conversationId: string) {
  const { hits } = await h.runtime.es.search<{ text: string; provenance: { job_id: string } }>({
    index: h.runtime.indices.memories,
    query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.document_id': conversationId } }] } },
    size: 100,
  });
  return hits.hits.map((hit) => hit._source!);
}

describe('supermemory surface (/compat/supermemory)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
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
