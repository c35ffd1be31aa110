import { ApiKeyStore } from '../lib/apikeys';
import { createElasticsearchClient } from '../lib/elasticsearch/client';
import { startHarness, type Harness } from './support/harness';
import { tcpProxy } from './support/tcp-proxy';

describe('API keys, permissions and tenant isolation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('answers 401 without a key or with a bad key, on the native API and every vendor surface', async () => {
    const routes: [string, string][] = [
      ['POST', '/v1/documents'],
      ['GET', '/v1/jobs'],
      ['POST', '/v1/search'],
      ['POST', '/compat/crosmos/api/v1/conversations'],
      ['POST', '/compat/supermemory/v4/conversations'],
      ['POST', '/compat/tex/ingestion/memory'],
      ['GET', '/compat/memsolus/v1/ingest-jobs'],
      ['POST', '/compat/synap/v1/memories'],
    ];
    for (const [method, route] of routes) {
      const body = method === 'GET' ? undefined : {};
      expect([route, (await h.api(method, route, { key: null, body })).status]).toEqual([route, 401]);
      expect([route, (await h.api(method, route, { key: 'cairn_0000000000000000_notarealkeynotarealkey', body })).status]).toEqual([route, 401]);
    }
    // Each surface answers in its own shape.
    expect((await h.api('POST', '/compat/crosmos/api/v1/conversations', { key: null, body: {} })).body).toEqual({ detail: expect.any(String) });
    expect((await h.api('POST', '/compat/supermemory/v4/conversations', { key: null, body: {} })).body).toMatchObject({ error: 'Unauthorized' });
  });

  it('mints keys that are stored hashed, carry permissions, and stop working when revoked', async () => {
    const created = await h.api('POST', '/v1/admin/keys', { body: { name: 'reader', permissions: ['read'] } });
    expect(created.status).toBe(201);
    const { key, id } = created.body;
    expect(key).toMatch(/^cairn_[0-9a-f]{16}_/);
    expect(created.body).toMatchObject({ tenant: 'acme', permissions: ['read'] });

    // Never stored in clear.
    const stored = await h.runtime.es.get<{ key_hash: string }>({ index: h.runtime.indices.apikeys, id });
    expect(JSON.stringify(stored._source)).not.toContain(key);
    expect(stored._source!.key_hash).toMatch(/^[0-9a-f]{64}$/);

    expect((await h.api('GET', '/v1/jobs', { key })).status).toBe(200);
    const forbidden = await h.api('POST', '/v1/documents', { key, body: { content: 'nope' } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.message).toMatch(/ingest/);
    expect((await h.api('POST', '/compat/synap/v1/memories', { key, body: { content: 'nope' } })).status).toBe(403);
    expect((await h.api('DELETE', '/v1/memories/mem_00000000000000000000000000000000', { key })).status).toBe(403);
    expect((await h.api('POST', '/v1/admin/keys', { key, body: {} })).status).toBe(403);
    // An import is ingest as well as write.
    const writer = (await h.api('POST', '/v1/admin/keys', { body: { permissions: ['write'] } })).body.key;
    expect((await h.api('POST', '/v1/backfills', { key: writer, body: { backfill: 'import', urls: ['https://example.invalid/a'] } })).status).toBe(403);
    expect((await h.api('POST', '/v1/schedules', { key: writer, body: { backfill: 'import', folder: 'notes', every: '24h' } })).status).toBe(403);
    // Search is its own permission: read alone does not search, search alone does.
    expect((await h.api('POST', '/v1/search', { key, body: { query: 'anything' } })).status).toBe(403);
    const searcher = (await h.api('POST', '/v1/admin/keys', { body: { permissions: ['search'] } })).body.key;
    expect((await h.api('POST', '/v1/search', { key: searcher, body: { query: 'anything' } })).status).toBe(200);
    expect((await h.api('GET', '/v1/jobs', { key: searcher })).status).toBe(403);

    const listed = await h.api('GET', '/v1/admin/keys');
    expect(listed.body.keys.map((entry: { id: string }) => entry.id)).toContain(id);
    expect(JSON.stringify(listed.body)).not.toMatch(/key_hash/);
    expect((await h.api('GET', '/v1/admin/keys', { key: h.keys.globex })).body.keys.map((entry: { id: string }) => entry.id)).not.toContain(id);

    // Another tenant's admin cannot revoke it.
    expect((await h.api('DELETE', `/v1/admin/keys/${id}`, { key: h.keys.globex })).status).toBe(404);
    const revoked = await h.api('DELETE', `/v1/admin/keys/${id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    expect((await h.api('GET', '/v1/jobs', { key })).status).toBe(401);
  });

  it('confines a minted key to its tenant; only the operator key administers another tenant\'s keys', async () => {
    // A tenant's own static key (CAIRN_API_KEYS) is not the operator key.
    expect((await h.api('POST', '/v1/admin/keys', { body: { tenant: 'initech' } })).status).toBe(403);
    expect((await h.api('GET', '/v1/admin/keys?tenant=globex')).status).toBe(403);
    // "." and ".." would name another tenant's folders (its import root): not tenants.
    for (const tenant of ['.', '..', '...']) expect((await h.api('POST', '/v1/admin/keys', { key: h.operatorKey, body: { tenant } })).status).toBe(400);
    const minted = await h.api('POST', '/v1/admin/keys', { key: h.operatorKey, body: { tenant: 'initech', permissions: ['ingest', 'read', 'search'] } });
    expect(minted.status).toBe(201);
    const initech = minted.body.key as string;
    const accepted = await h.api('POST', '/v1/documents', { key: initech, body: { content: 'Initech keeps its staplers in the basement.' } });
    expect(accepted.status).toBe(202);
    const done = await h.waitForJob('initech', accepted.body.job_id);
    expect(done.status).toBe('completed');
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`, { key: initech })).status).toBe(200);
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`)).status).toBe(404);
    const theirs = await h.api('POST', '/v1/search', { key: initech, body: { query: 'staplers basement', mode: 'bm25' } });
    expect(theirs.body.results.length).toBeGreaterThan(0);
    const ours = await h.api('POST', '/v1/search', { body: { query: 'staplers basement', mode: 'bm25' } });
    expect(ours.body.results).toHaveLength(0);

    // A tenant admin key (not an operator key) cannot mint for another tenant.
    const admin = await h.api('POST', '/v1/admin/keys', { body: { permissions: ['admin'] } });
    expect((await h.api('POST', '/v1/admin/keys', { key: admin.body.key, body: { tenant: 'globex' } })).status).toBe(403);
    expect((await h.api('POST', '/v1/admin/keys', { key: admin.body.key, body: { permissions: ['read'] } })).status).toBe(201);

    // The operator lists and revokes the key it minted for initech.
    const listed = await h.api('GET', '/v1/admin/keys?tenant=initech', { key: h.operatorKey });
    expect(listed.body.keys.map((entry: { id: string }) => entry.id)).toContain(minted.body.id);
    expect((await h.api('DELETE', `/v1/admin/keys/${minted.body.id}`)).status).toBe(404);
    expect((await h.api('DELETE', `/v1/admin/keys/${minted.body.id}?tenant=initech`, { key: h.operatorKey })).status).toBe(200);
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`, { key: initech })).status).toBe(401);
  });

  it('never answers bad input with a 5xx or a stack trace', async () => {
    const bodies: [string, string, unknown][] = [
      ['POST', '/v1/documents', '{"content": '],
      ['POST', '/v1/documents', { content: 42 }],
      ['POST', '/v1/conversations', { messages: [] }],
      ['POST', '/v1/conversations', { messages: [{ role: 'user', content: 'hi', timestamp: 'not a date' }] }],
      ['POST', '/compat/tex/ingestion/memory', { scope: { org_id: 'o' }, turns: [{ role: 'user', text: 'hi', timestamp: 'soon' }] }],
      ['POST', '/v1/batch', { items: 'nope' }],
      ['POST', '/v1/documents', { content: 'x', metadata: { note: 'y'.repeat(40_000) } }],
      ['POST', '/v1/documents', { content: 'x', metadata: JSON.parse(`${'{"a":'.repeat(18)}1${'}'.repeat(18)}`) }],
      // Within every character limit, but one term of the flattened field in UTF-8 bytes (CJK: 3 a character).
      ['POST', '/v1/documents', { content: 'x', metadata: JSON.parse(`${`{"${'字'.repeat(256)}":`.repeat(10)}"${'字'.repeat(8192)}"${'}'.repeat(10)}`) }],
      ['POST', '/compat/supermemory/v4/conversations', { conversationId: 'c', messages: [{ role: 'user', content: 'x' }], metadata: { note: 'y'.repeat(40_000) } }],
      ['PATCH', '/v1/memories/mem_00000000000000000000000000000000', { metadata: { note: 'y'.repeat(40_000) } }],
      ['GET', '/v1/entities?page=101&page_size=100', undefined],
      ['GET', '/v1/jobs?page_token=AAAA', undefined],
      ['GET', '/v1/jobs/..%2F..%2Fetc', undefined],
      ['GET', '/v1/memories/%00', undefined],
      ['PATCH', '/v1/memories/mem_1', { merge_strategy: 'shout' }],
      ['POST', '/v1/admin/keys', { permissions: ['root'] }],
      ['POST', '/compat/crosmos/api/v1/conversations', '{oops'],
      ['POST', '/compat/tex/ingestion/memory', { turns: 'x' }],
      ['POST', '/compat/synap/v1/memories/batch', { documents: [] }],
      ['GET', '/compat/memsolus/v1/ingest-jobs?page_size=1000', undefined],
      // Path ids that are not validly percent-encoded.
      ['GET', '/v1/jobs/%ff', undefined],
      ['DELETE', '/v1/memories/%E0%A4%A', undefined],
      ['GET', '/compat/synap/v1/memories/%zz', undefined],
      // Nesting a few thousand levels deep in a 20 KB body (measuring it used to overflow the stack).
      ['POST', '/v1/documents', `{"content":"x","metadata":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`],
      ['POST', '/compat/tex/ingestion/memory', `{"scope":{"org_id":"o"},"turns":[{"role":"user","text":"t","observations":${'['.repeat(5000)}${']'.repeat(5000)}}]}`],
      // Dates past year 9999 in UTC: Elasticsearch's date fields cannot hold them.
      ['POST', '/v1/documents', { content: 'x', document_date: '9999-12-31T23:59:59-14:00' }],
      ['POST', '/v1/conversations', { messages: [{ role: 'user', content: 'hi', timestamp: '+275760-09-13T00:00:00Z' }] }],
      ['POST', '/compat/synap/v1/memories', { content: 'x', document_created_at: '9999-12-31T23:59:59-14:00' }],
      ['POST', '/compat/tex/ingestion/memory', { scope: { org_id: 'o' }, turns: [{ role: 'user', text: 'r', timestamp: '9999-12-31T23:59:59-14:00' }] }],
      // Neither Tex tier: nothing would be stored.
      ['POST', '/compat/tex/ingestion/memory', { scope: { org_id: 'o' }, turns: [{ role: 'user', text: 'r' }], options: { write_active: false, write_passive: false } }],
      // A metadata filter value longer than any term.
      ['POST', '/v1/search', { query: 'hello', filters: { metadata: { a: 'x'.repeat(40_000) } } }],
      // Schedules Temporal refuses, or that would never come round; an import folder with a NUL.
      ['POST', '/v1/schedules', { backfill: 'reembed', cron: 'not a cron!!' }],
      ['POST', '/v1/schedules', { backfill: 'reembed', cron: '61 25 32 13 8' }],
      // Under a minute apart, by cron: '@every' and a seconds field.
      ['POST', '/v1/schedules', { backfill: 'reembed', cron: '@every 1s', paused: true }],
      ['POST', '/v1/schedules', { backfill: 'reembed', cron: '*/1 * * * * * *', paused: true }],
      ['POST', '/v1/schedules', { backfill: 'reembed', every: '99999999999999999999d' }],
      ['POST', '/v1/backfills', { backfill: 'import', folder: 'a\u0000b' }],
      // Page numbers in hexadecimal or given twice.
      ['GET', '/compat/memsolus/v1/ingest-jobs?page=0x10', undefined],
      ['GET', '/v1/jobs?page_size=1&page_size=2', undefined],
      // "__proto__" as a key, plainly or escaped: it vanished, and a filter on it matched everything.
      ['POST', '/v1/documents', '{"content":"x","metadata":{"__proto__":{"polluted":"yes"}}}'],
      ['POST', '/v1/memories/list', '{"filters":{"metadata":{"\\u005f_proto__":"x"}}}'],
    ];
    for (const [method, route, body] of bodies) {
      const response = await h.api(method, route, { body, headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      const sent = `${method} ${route} ${JSON.stringify(body ?? '').slice(0, 120)}`;
      expect([sent, response.status >= 400 && response.status < 500]).toEqual([sent, true]);
      expect(JSON.stringify(response.body ?? '')).not.toMatch(/\bat .+\.(ts|js):\d+/);
      if (typeof body === 'string' && body.includes('proto')) expect([sent, response.body.error.message]).toEqual([sent, 'Request body uses "__proto__" as a key, which is not allowed']);
    }
  });

  it('honours a minted key it read in the last hour while Elasticsearch is down, so ingests are still accepted', async () => {
    // Elasticsearch reached through a proxy this test closes: an outage for this store only.
    const proxy = await tcpProxy(h.config.elasticsearchUrl);
    const es = createElasticsearchClient(proxy.url);
    let clock = 5_000_000;
    const store = new ApiKeyStore(es, h.runtime.indices.apikeys, () => clock);
    try {
      const { key } = await new ApiKeyStore(h.runtime.es, h.runtime.indices.apikeys).create({ tenant: 'acme', permissions: ['ingest'] });
      expect((await store.resolve(key))?.tenant).toBe('acme');
      await proxy.close();
      // Past the cache's 5 s: the read fails, and the key is honoured as it last read.
      clock += 60_000;
      expect((await store.resolve(key))?.tenant).toBe('acme');
      // A key never read here is not: its read fails as the outage it is.
      const { key: unseen } = await new ApiKeyStore(h.runtime.es, h.runtime.indices.apikeys).create({ tenant: 'acme', permissions: ['ingest'] });
      await expect(store.resolve(unseen)).rejects.toThrow();
      // Nor is one last read over an hour ago.
      clock += 60 * 60_000;
      await expect(store.resolve(key)).rejects.toThrow();
    } finally {
      await proxy.close();
      await es.close();
    }
  });

  it('resolves a minted key with one read for simultaneous requests, refreshes a key in use ahead of its expiry, and still drops a revoked one', async () => {
    let clock = 1_000_000;
    const store = new ApiKeyStore(h.runtime.es, h.runtime.indices.apikeys, () => clock);
    const otherReplica = new ApiKeyStore(h.runtime.es, h.runtime.indices.apikeys, () => clock);
    const { key, record } = await store.create({ tenant: 'acme', permissions: ['ingest'] });
    const gets = jest.spyOn(h.runtime.es, 'get');
    // Only this store's reads: the in-process worker shares the client.
    const reads = () => gets.mock.calls.filter(([params]) => (params as { index?: string }).index === h.runtime.indices.apikeys).length;
    try {
      // Ten requests at once with a key not yet cached: one read, all answered.
      const principals = await Promise.all(Array.from({ length: 10 }, () => store.resolve(key)));
      expect(principals.map((p) => p?.tenant)).toEqual(Array(10).fill('acme'));
      expect(reads()).toBe(1);

      // Within the refresh age: served from the cache, no read.
      clock += 2_000;
      expect((await store.resolve(key))?.keyId).toBe(record.id);
      expect(reads()).toBe(1);

      // Past it: still answered from the cache at once, and read again in the background, once.
      clock += 1_500;
      const [first, second] = [store.resolve(key), store.resolve(key)];
      expect((await first)?.tenant).toBe('acme');
      expect((await second)?.tenant).toBe('acme');
      expect(reads()).toBe(2);

      // 5.5 s after the first read (beyond its 5 s TTL): answered by the refresh (cached, or still under
      // way and joined), without another read.
      clock += 2_000;
      expect((await store.resolve(key))?.tenant).toBe('acme');
      expect(reads()).toBe(2);

      // Revoked on another replica: this one's entry, refreshed at 3.5 s, is 3 s old a second later:
      // still honoured, and refreshed again; by 5 s of age the key is refused (the refresh read the
      // revoke, or is joined as the entry expired).
      await otherReplica.revoke('acme', record.id);
      clock += 1_000;
      expect((await store.resolve(key))?.tenant).toBe('acme');
      clock += 2_000;
      expect(await store.resolve(key)).toBeUndefined();

      // On the replica that revoked it, at once.
      const fresh = await store.create({ tenant: 'acme', permissions: ['read'] });
      expect((await otherReplica.resolve(fresh.key))?.tenant).toBe('acme');
      await otherReplica.revoke('acme', fresh.record.id);
      expect(await otherReplica.resolve(fresh.key)).toBeUndefined();
    } finally {
      gets.mockRestore();
    }
  });
});
