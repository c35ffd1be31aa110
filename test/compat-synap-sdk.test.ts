import { startHarness, type Harness } from './support/harness';

/**
 * Synap's Python SDK (maximem-synap 0.6.9) pointed at /compat/synap: the requests below are the ones
 * the SDK sends, as captured from it, and each answer is checked for what the SDK reads from it
 * (it takes only 200 and 204 as success, parses ids with UUID(), dates with fromisoformat, and reads
 * errors from FastAPI's `detail`).
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe("Synap's Python SDK against /compat/synap", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  /** The body memories.create() sends: every field, unset ones as null (pydantic's model_dump). */
  const sdkCreate = (document: unknown, extra: Record<string, unknown> = {}) => ({
    document,
    document_type: 'ai-chat-conversation',
    document_id: null,
    document_created_at: null,
    user_id: 'u-42',
    customer_id: 'cust-7',
    scope: null,
    mode: 'long-range',
    metadata: { channel: 'sdk' },
    ...extra,
  });

  it('initializes, creates, polls to completion, then gets, updates and deletes a memory by the UUIDs it was given', async () => {
    const whoami = await h.api('GET', '/compat/synap/api/v1/auth/whoami');
    expect(whoami.status).toBe(200);
    expect(whoami.body).toEqual({ client_id: 'acme' });

    const created = await h.api('POST', '/compat/synap/api/v1/memories/create', {
      body: sdkCreate('User: I switched our billing plan to annual.\nAssistant: Done, it renews every March.', { document_id: 'ticket-9baac45c' }),
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ ingestion_id: expect.stringMatching(UUID), document_id: 'ticket-9baac45c', status: 'queued', queued_at: expect.stringMatching(ISO) });
    const duplicate = await h.api('POST', '/compat/synap/api/v1/memories/create', { body: sdkCreate('again', { document_id: 'ticket-9baac45c' }) });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.detail).toMatch(/already ingested/);

    const ingestion = created.body.ingestion_id as string;
    await h.waitForJob('acme', ingestion);
    const status = await h.api('GET', `/compat/synap/api/v1/memories/status/${ingestion}`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      ingestion_id: ingestion,
      document_id: 'ticket-9baac45c',
      status: 'completed',
      queued_at: created.body.queued_at,
      started_at: expect.stringMatching(ISO),
      completed_at: expect.stringMatching(ISO),
      error_message: null,
    });
    expect(status.body.memory_ids.length).toBe(status.body.memories_created);
    expect(status.body.memory_ids.length).toBeGreaterThan(0);

    const memoryId = status.body.memory_ids[0] as string;
    expect(memoryId).toMatch(UUID);
    const memory = await h.api('GET', `/compat/synap/api/v1/memories/${memoryId}`);
    expect(memory.status).toBe(200);
    expect(memory.body).toMatchObject({ memory_id: memoryId, memory_type: memory.body.type, source_document_id: 'ticket-9baac45c', created_at: expect.stringMatching(ISO) });
    expect(typeof memory.body.content).toBe('string');
    expect(typeof memory.body.confidence).toBe('number');
    // The seed's id form reads the same memory.
    expect((await h.api('GET', `/compat/synap/v1/memories/${memory.body.id}`)).body.content).toBe(memory.body.content);

    // update(): `document` is the new content; merge_strategy as sent.
    const updated = await h.api('PATCH', `/compat/synap/api/v1/memories/${memoryId}`, { body: { document: 'Also prefers email.', merge_strategy: 'append' } });
    expect(updated.status).toBe(200);
    expect(updated.body.memory_id).toBe(memoryId);
    expect(updated.body.content).toBe(`${memory.body.content}\nAlso prefers email.`);
    expect(updated.body.updated_at).toMatch(ISO);
    const retyped = await h.api('PATCH', `/compat/synap/api/v1/memories/${memoryId}`, { body: { document: 'x', merge_strategy: 'replace', document_type: 'email' } });
    expect(retyped.status).toBe(422);
    expect(retyped.body.detail[0]).toMatchObject({ loc: ['body', 'document_type'], msg: expect.stringMatching(/document type/) });

    const deleted = await h.api('DELETE', `/compat/synap/api/v1/memories/${memoryId}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ memory_id: memoryId, deleted_at: expect.stringMatching(ISO) });
    const gone = await h.api('GET', `/compat/synap/api/v1/memories/${memoryId}`);
    expect(gone.status).toBe(404);
    expect(typeof gone.body.detail).toBe('string');
    // Another tenant reads none of it.
    expect((await h.api('GET', `/compat/synap/api/v1/memories/status/${ingestion}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('batch-creates with the counts the SDK reads, and refuses a scope ladder rather than reading it more widely', async () => {
    const batch = await h.api('POST', '/compat/synap/api/v1/memories/batch', {
      body: {
        documents: [
          sdkCreate('Email: the contract with Lumen renews in March.', { document_type: 'email', metadata: {} }),
          sdkCreate('Meeting: we agreed to ship v2 in June.', { document_type: 'meeting-transcript', metadata: {} }),
          sdkCreate('Team note', { scope: { customer: 'acme', team: 'payments', user: 'dana' } }),
        ],
        fail_fast: false,
      },
    });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ batch_id: expect.stringMatching(UUID), total: 3, succeeded: 2, failed: 1 });
    for (const result of batch.body.results) {
      expect(result).toEqual({ index: expect.any(Number), ingestion_id: expect.stringMatching(UUID), document_id: expect.any(String), status: 'queued', queued_at: expect.stringMatching(ISO) });
    }
    expect(batch.body.errors).toEqual([{ index: 2, code: 'validation_error', message: expect.stringMatching(/^scope: Cairn has no scope levels/) }]);

    const rejected = await h.api('POST', '/compat/synap/api/v1/memories/batch', { body: { documents: [sdkCreate('ok'), sdkCreate('')], fail_fast: true } });
    expect(rejected.status).toBe(400);
    expect(rejected.body.detail).toMatch(/fail_fast/);

    // A document given as an object is ingested as JSON.
    const structured = await h.api('POST', '/compat/synap/api/v1/memories/create', { body: sdkCreate({ ticket: 'T-7', summary: 'Refund issued to Priya Natarajan' }) });
    expect(structured.status).toBe(200);
    const progress = await h.waitForJob('acme', structured.body.ingestion_id);
    expect(progress).toMatchObject({ status: 'completed', format: 'JSON' });
    // Neither content nor document: FastAPI's 422, naming the field.
    const empty = await h.api('POST', '/compat/synap/api/v1/memories/create', { body: { ...sdkCreate('x'), document: null } });
    expect(empty.status).toBe(422);
    expect(empty.body.detail[0].loc).toEqual(['body', 'content']);
  });

  it('creates from a file or from text, as create_from_file() sends them (multipart)', async () => {
    const form = new FormData();
    form.set('user_id', 'u-42');
    form.set('relationship_type', 'b2c');
    form.set('mode', 'long-range');
    form.set('customer_id', 'cust-7');
    form.set('file', new Blob(['# Trip\n\nThe ferry to Hydra leaves Piraeus at 8am.\n'], { type: 'text/markdown' }), 'note.md');
    const uploaded = await h.api('POST', '/compat/synap/api/v1/memories/upload', { body: form });
    expect(uploaded.status).toBe(200);
    expect(uploaded.body).toMatchObject({ ingestion_id: expect.stringMatching(UUID), status: 'queued' });
    const file = await h.waitForJob('acme', uploaded.body.ingestion_id);
    expect(file).toMatchObject({ status: 'completed', format: 'MARKDOWN', kind: 'file', scope: { user_id: 'u-42', customer_id: 'cust-7' } });
    const found = await h.api('POST', '/v1/search', { body: { query: 'ferry to Hydra', mode: 'bm25' } });
    expect(found.body.results.map((r: { text: string }) => r.text).join(' ')).toMatch(/Piraeus at 8am/);

    // With text and no file, httpx sends a plain form, not multipart.
    const text = new URLSearchParams({ user_id: 'u-42', relationship_type: 'b2c', mode: 'long-range', text: 'Priya prefers window seats.', metadata: JSON.stringify({ via: 'upload' }) });
    const fromText = await h.api('POST', '/compat/synap/api/v1/memories/upload', { body: text });
    expect(fromText.status).toBe(200);
    expect(await h.waitForJob('acme', fromText.body.ingestion_id)).toMatchObject({ status: 'completed', format: 'TXT' });

    const neither = new FormData();
    neither.set('user_id', 'u-42');
    const refused = await h.api('POST', '/compat/synap/api/v1/memories/upload', { body: neither });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body.detail)).toMatch(/a file .* or text/);
  });
  it("forgets the memories of one user a description matches, as memories.forget() asks: a preview lists them, direct deletes them", async () => {
    const create = async (content: string, userId: string | null, customerId: string | null = 'cust-f') => {
      const created = await h.api('POST', '/compat/synap/api/v1/memories/create', { body: sdkCreate(content, { document_type: 'document', user_id: userId, customer_id: customerId }) });
      expect(created.status).toBe(200);
      await h.waitForJob('acme', created.body.ingestion_id);
      const status = await h.api('GET', `/compat/synap/api/v1/memories/status/${created.body.ingestion_id}`);
      return status.body.memory_ids as string[];
    };
    const [address] = await create('I live at 12 Rose Street in Leeds.', 'u-forget');
    const [ficus] = await create('I water the ficus every Sunday.', 'u-forget');
    const [theirs] = await create('I live at 9 Elm Road in York.', 'u-other');
    const [shared] = await create('Our office is at 3 Mill Lane in Leeds.', null);
    // The body the SDK sends: every field, unset ones as null.
    const forget = (body: Record<string, unknown>, key?: string) =>
      h.api('POST', '/compat/synap/api/v1/memories/forget', { key, body: { description: 'where I live, my home address', user_id: 'u-forget', customer_id: 'cust-f', scope: null, mode: 'preview', ...body } });

    const preview = await forget({});
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ status: 'preview', request_id: null, deleted_ids: [], failed_ids: [], still_present_in: [], may_be_incomplete: false });
    expect(preview.body.candidates).toEqual([{ memory_id: address, content: expect.stringMatching(/Rose Street/), memory_type: expect.any(String), store: 'memory' }]);
    // A preview deletes nothing.
    expect((await h.api('GET', `/compat/synap/api/v1/memories/${address}`)).status).toBe(200);
    // Deleting needs `write`; a key with search alone may preview.
    const searcher = (await h.api('POST', '/v1/admin/keys', { body: { permissions: ['read', 'search'] } })).body.key as string;
    expect((await forget({}, searcher)).body.status).toBe('preview');
    expect((await forget({ mode: 'direct' }, searcher)).status).toBe(403);

    const direct = await forget({ mode: 'direct' });
    expect(direct.body).toMatchObject({ status: 'deleted', candidates: [expect.objectContaining({ memory_id: address })], failed_ids: [], still_present_in: [] });
    expect(direct.body.deleted_ids).toContain(address);
    expect((await h.api('GET', `/compat/synap/api/v1/memories/${address}`)).status).toBe(404);
    // Another user's address, the customer's shared memory and the user's other memories stay.
    for (const kept of [ficus, theirs, shared]) expect((await h.api('GET', `/compat/synap/api/v1/memories/${kept}`)).status).toBe(200);
    expect((await forget({ mode: 'direct' })).body).toMatchObject({ status: 'nothing_matches', candidates: [], deleted_ids: [] });
    // Another tenant's key finds nothing of this tenant's.
    expect((await forget({ description: 'the ficus', mode: 'direct' }, h.keys.globex)).body.status).toBe('nothing_matches');
    expect((await h.api('GET', `/compat/synap/api/v1/memories/${ficus}`)).status).toBe(200);

    // A turn stored twice (a Tex write: its fragment and its enrichment, which search answers once) goes whole.
    const tex = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'acme', user_id: 'u-tex', session_id: 's-locker' }, turns: [{ role: 'user', text: 'My gym locker code is 4471.' }] } });
    await h.waitForJob('acme', tex.body.job_id);
    const stored = async () => (await h.api('POST', '/v1/memories/list', { body: { filters: { session_id: 's-locker' } } })).body.memories.length as number;
    expect(await stored()).toBeGreaterThanOrEqual(2);
    const locker = await forget({ description: 'my gym locker code', user_id: 'u-tex', customer_id: null, mode: 'direct' });
    expect(locker.body).toMatchObject({ status: 'deleted', candidates: [expect.objectContaining({ content: expect.stringMatching(/4471/) })] });
    expect(locker.body.deleted_ids.length).toBeGreaterThanOrEqual(2);
    expect(await stored()).toBe(0);

    // Scoped to exactly one user; no scope ladder; a description of 3 to 500 characters; a known mode.
    const unscoped = await forget({ user_id: null });
    expect([unscoped.status, unscoped.body.detail[0].loc]).toEqual([422, ['body', 'user_id']]);
    expect((await forget({ scope: { customer: 'cust-f', team: 't', user: 'u-forget' } })).status).toBe(422);
    expect((await forget({ description: 'ab' })).status).toBe(422);
    expect((await forget({ mode: 'approve' })).status).toBe(422);
  });
});
