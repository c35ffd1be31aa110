import { slowFetch } from './support/faults';
import { startHarness, type Harness } from './support/harness';
import { texCall, texToken } from './support/tex';

/**
 * Tex's SDK's deletions (`tex.deletions`, `/me/deletions`), sent as `tex-sdk` 1.5.2 sends them: a
 * user's data or one memory deleted for good, answered with a receipt `deletions.get` reads back.
 */
describe("Tex's deletions (/compat/tex/me/deletions)", () => {
  let h: Harness;
  /** The SDK's org-admin client, Tex(api_key=…): a token minted without a user. */
  let admin: string;
  let globexAdmin: string;
  /** Tokens as Tex(api_key=…, user_id=…) gets them. */
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    h = await startHarness({ wrapActivities: slowFetch(5_000) });
    [admin, globexAdmin, alice, bob] = await Promise.all([orgAdmin(h.keys.acme!), orgAdmin(h.keys.globex!), texToken(h, 'alice'), texToken(h, 'bob')]);
  });
  afterAll(async () => h?.close());

  const tex = (method: string, path: string, key: string, body?: unknown) => texCall(h)(method, path, key, body);
  const orgAdmin = async (apiKey: string) => (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: apiKey } })).body.access_token as string;
  /** What the SDK's deletions.create sends. */
  const deletion = (key: string, target: Record<string, string>, extra: Record<string, unknown> = {}) => tex('POST', '/me/deletions', key, { target, mode: 'soft', ...extra });
  const remember = async (key: string, user: string, text: string, options: Record<string, boolean> = {}) => {
    const written = await tex('POST', '/ingestion/memory', key, { scope: { org_id: 'acme', user_id: user, session_id: 'chat-1' }, turns: [{ role: 'user', text }], options });
    expect(written.status).toBe(202);
    return written.body as { job_id: string; active_fragment_ids: string[] };
  };
  const addDocument = async (key: string, content: string, metadata?: Record<string, unknown>) => {
    const added = await tex('POST', '/v3/documents', key, { content, ...(metadata ? { metadata } : {}) });
    expect(added.status).toBe(200);
    return added.body.id as string;
  };
  const memoriesOf = async (tenant: string, user: string) =>
    (await h.api('POST', '/v1/memories/list', { key: h.keys[tenant], body: { filters: { user_id: user }, page_size: 100 } })).body.memories as { id: string; text: string }[];
  const entitiesNamed = async (tenant: string, q: string) => (await h.api('GET', `/v1/entities?q=${encodeURIComponent(q)}`, { key: h.keys[tenant] })).body.total as number;
  const recall = async (key: string, user: string, q: string) => {
    const answer = await tex('POST', '/recall', key, { q, scope: { org_id: 'acme', user_id: user, session_id: 'chat-1' }, mode: 'active', include_timeline: false });
    expect(answer.status).toBe(200);
    return [...answer.body.hits.turns, ...answer.body.hits.observations].map((hit: { text: string }) => hit.text).join('\n');
  };

  it("erases a user whole for the SDK's org-admin client, as soft was asked: memories, sources, entities and uploads gone, another user's and tenant's kept, the receipt read back", async () => {
    const document = await addDocument(alice, 'Quentin Marsh restores harpsichords in Bruges every spring.');
    const turn = await remember(alice, 'alice', 'I am allergic to shellfish and I live in Ghent.');
    await remember(bob, 'bob', 'My cat is called Miso and she hates the vacuum.', { write_passive: false });
    const elsewhere = await addDocument(await texToken(h, 'alice', h.keys.globex), 'Quentin Marsh restores harpsichords in Bruges every spring.');
    for (const [tenant, job] of [['acme', document], ['acme', turn.job_id], ['globex', elsewhere]] as const) expect((await h.waitForJob(tenant, job)).status).toBe('completed');
    const stored = await memoriesOf('acme', 'alice');
    expect(stored.length).toBeGreaterThan(1);
    expect(await entitiesNamed('acme', 'Quentin Marsh')).toBeGreaterThan(0);

    const erased = await deletion(admin, { kind: 'user', value: 'alice' }, { reason: 'GDPR erasure' });
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({
      request_id: expect.stringMatching(/^del_/),
      org_id: 'acme',
      target: { kind: 'user', value: 'alice' },
      mode: 'purge',
      requested_mode: 'soft',
      status: 'completed',
      requested_via: 'access_token',
      reason: 'GDPR erasure',
      purge_after: null,
      replayed: false,
      tiers: { helixdb: { status: 'completed', deleted: stored.length, memories_deleted: stored.length }, sources: { status: 'completed', deleted: 2 } },
    });
    expect(erased.body.tiers.helixdb.entities_deleted).toBeGreaterThan(0);
    expect(erased.body.tiers.blob_store.job_contents_deleted).toBeGreaterThanOrEqual(2);
    expect(erased.body.not_covered.map((kept: { tier: string }) => kept.tier)).toEqual(['job_summaries', 'temporal_history', 'elasticsearch_segments', 'deletion_receipt']);

    expect(await memoriesOf('acme', 'alice')).toEqual([]);
    expect(await recall(alice, 'alice', 'what is she allergic to?')).not.toMatch(/shellfish/);
    expect(await entitiesNamed('acme', 'Quentin Marsh')).toBe(0);
    expect((await tex('GET', `/v3/documents/${document}`, alice)).status).toBe(404);
    expect(await recall(bob, 'bob', 'what is the cat called?')).toMatch(/Miso/);
    expect((await memoriesOf('globex', 'alice')).length).toBeGreaterThan(0);

    // deletions.get: the org's admin and the user read it back; another user and another org do not.
    expect(await tex('GET', `/me/deletions/${erased.body.request_id}`, admin)).toMatchObject({ status: 200, body: erased.body });
    expect((await tex('GET', `/me/deletions/${erased.body.request_id}`, alice)).status).toBe(200);
    expect((await tex('GET', `/me/deletions/${erased.body.request_id}`, bob)).status).toBe(404);
    expect((await tex('GET', `/me/deletions/${erased.body.request_id}`, globexAdmin)).status).toBe(404);
    expect((await tex('GET', '/me/deletions/del_nothing', admin)).status).toBe(404);

    // Nothing of the user is left: delete_user answers 404 as Tex's does for a user it has no record of; delete_user_scope a receipt of nothing.
    expect(await deletion(admin, { kind: 'user', value: 'alice' })).toMatchObject({ status: 404, body: { detail: expect.stringMatching(/user alice/) } });
    expect((await deletion(admin, { kind: 'user_scope', value: 'alice' })).body.tiers).toMatchObject({ helixdb: { deleted: 0 }, sources: { deleted: 0 } });
  });

  it("lets a user's token delete that user's data only", async () => {
    const written = await remember(bob, 'bob', 'I keep the spare key under the blue flowerpot.', { write_passive: false });
    expect((await h.waitForJob('acme', written.job_id)).status).toBe('completed');
    expect(await deletion(bob, { kind: 'user', value: 'carol' })).toMatchObject({ status: 403, body: { detail: expect.stringMatching(/acts for user bob/) } });
    expect(await deletion(bob, { kind: 'memory', value: written.active_fragment_ids[0]!, owner_user_id: 'carol' })).toMatchObject({ status: 403 });

    const erased = await deletion(bob, { kind: 'user_scope', value: 'bob' });
    expect(erased.body).toMatchObject({ status: 'completed', requested_by: 'bob', target: { kind: 'user_scope', value: 'bob' } });
    expect(erased.body.tiers.helixdb.memories_deleted).toBeGreaterThanOrEqual(2);
    expect(await memoriesOf('acme', 'bob')).toEqual([]);
  });

  it('deletes one memory of its owner, with every copy of what it says, and leaves the rest of the user', async () => {
    const carol = await texToken(h, 'carol');
    const forgotten = await remember(carol, 'carol', 'My bank PIN hint is the year of the Brussels flood.');
    const kept = await remember(carol, 'carol', 'I take the 7:42 train to Antwerp on weekdays.', { write_passive: false });
    for (const job of [forgotten.job_id, kept.job_id]) expect((await h.waitForJob('acme', job)).status).toBe('completed');
    const fragment = forgotten.active_fragment_ids[0]!;
    const copies = (await memoriesOf('acme', 'carol')).filter((memory) => memory.text.includes('PIN'));
    expect(copies.length).toBeGreaterThanOrEqual(1);

    // The SDK refuses a memory deletion without its owner before sending; sent anyway, it is a 422.
    expect(await deletion(admin, { kind: 'memory', value: fragment })).toMatchObject({ status: 422, body: { detail: [{ loc: ['body', 'target', 'owner_user_id'] }] } });
    expect((await deletion(admin, { kind: 'memory', value: fragment, owner_user_id: 'dave' })).status).toBe(404);
    expect((await deletion(admin, { kind: 'memory', value: 'mem_0000', owner_user_id: 'carol' })).status).toBe(404);

    const erased = await deletion(carol, { kind: 'memory', value: fragment, owner_user_id: 'carol' });
    expect(erased.status).toBe(200);
    expect(erased.body.tiers).toMatchObject({ helixdb: { memories_deleted: copies.length }, sources: { status: 'not_applicable' } });
    expect(erased.body.not_covered.map((gap: { tier: string }) => gap.tier)).toEqual(expect.arrayContaining(['blob_store_upload', 'tombstone']));
    expect((await h.api('GET', `/v1/memories/mem_${fragment}`)).status).toBe(404);
    expect(await recall(carol, 'carol', 'what is the PIN hint?')).not.toMatch(/PIN/);
    expect(await recall(carol, 'carol', 'which train do I take?')).toMatch(/7:42/);
    // Deleted, it is not found again.
    expect((await deletion(carol, { kind: 'memory', value: fragment, owner_user_id: 'carol' })).status).toBe(404);
  });

  it('answers an idempotency key sent again with its receipt, and refuses it for another target', async () => {
    const written = await remember(admin, 'erin', 'Erin waters the ferns on Thursdays.', { write_passive: false });
    expect((await h.waitForJob('acme', written.job_id)).status).toBe('completed');
    const first = await deletion(admin, { kind: 'user_scope', value: 'erin' }, { idempotency_key: 'erase-erin' });
    expect(first.body.tiers.helixdb.memories_deleted).toBe(1);
    const again = await deletion(admin, { kind: 'user_scope', value: 'erin' }, { idempotency_key: 'erase-erin' });
    expect(again.body).toEqual({ ...first.body, replayed: true });
    expect(await deletion(admin, { kind: 'user_scope', value: 'frank' }, { idempotency_key: 'erase-erin' })).toMatchObject({ status: 409, body: { detail: expect.stringMatching(/another target/) } });
  });

  it('refuses what Cairn cannot delete as asked with a 4xx saying so', async () => {
    expect(await deletion(admin, { kind: 'scope', value: 'team:eng' })).toMatchObject({ status: 422, body: { detail: [{ loc: ['body', 'target', 'kind'], msg: expect.stringMatching(/hierarchical scope/) }] } });
    expect((await deletion(admin, { kind: 'team', value: 'eng' })).status).toBe(422);
    expect((await deletion(admin, { kind: 'user', value: 'alice' }, { mode: 'hard' })).status).toBe(422);
    expect((await deletion(admin, { kind: 'user', value: 'alice', owner_user_id: 'alice' })).status).toBe(422);
    expect((await deletion(admin, { kind: 'user', value: ' ' })).status).toBe(422);
    // org_id is the platform surface's field; the org is the key's.
    expect((await deletion(admin, { kind: 'user', value: 'alice' }, { org_id: 'globex' })).status).toBe(422);
    expect((await tex('POST', '/me/deletions', admin, {})).status).toBe(422);
    expect((await h.api('POST', '/compat/tex/me/deletions', { key: null, body: { target: { kind: 'user', value: 'alice' } } })).status).toBe(401);
    // The platform admin's surface: Cairn has none, and nothing waits for a purge.
    for (const path of ['/admin/deletions', '/admin/deletions/run-purges?limit=50']) {
      expect(await tex('POST', path, admin, { target: { kind: 'user', value: 'alice' }, mode: 'purge', org_id: 'acme' })).toMatchObject({ status: 403, body: { detail: expect.stringMatching(/no platform-admin deletion surface/) } });
    }
  });

  it('answers 409 while a job of the user is queued or running, and erases the user once it has ended', async () => {
    const frank = await texToken(h, 'frank');
    const job = await addDocument(frank, 'Frank repairs bicycles in Leuven.', { test: 'slow' });
    const refused = await deletion(admin, { kind: 'user', value: 'frank' });
    expect(refused).toMatchObject({ status: 409, body: { detail: expect.stringContaining(job) } });
    expect((await h.waitForJob('acme', job)).status).toBe('completed');
    expect((await deletion(admin, { kind: 'user', value: 'frank' })).body.tiers.sources.deleted).toBe(1);
    expect(await memoriesOf('acme', 'frank')).toEqual([]);
  });

  it('answers 409 for a memory its job is still enriching, whose later memories would say it again', async () => {
    const written = await tex('POST', '/ingestion/memory', admin, { scope: { org_id: 'acme', user_id: 'hana', session_id: 'chat-1' }, turns: [{ role: 'user', text: 'Hana hides the spare key in the garden gnome.' }], metadata: { test: 'slow' } });
    const fragment = written.body.active_fragment_ids[0] as string;
    expect(await deletion(admin, { kind: 'memory', value: fragment, owner_user_id: 'hana' })).toMatchObject({ status: 409, body: { detail: expect.stringContaining(written.body.job_id) } });
    expect((await h.waitForJob('acme', written.body.job_id)).status).toBe('completed');
    expect((await deletion(admin, { kind: 'memory', value: fragment, owner_user_id: 'hana' })).status).toBe(200);
    expect((await memoriesOf('acme', 'hana')).filter((memory) => memory.text.includes('garden gnome'))).toEqual([]);
  });

  it("goes with its tenant: erasing the tenant deletes its deletions' receipts", async () => {
    const tenant = `receipts-${Date.now()}`;
    const minted = await h.api('POST', '/v1/admin/keys', { key: h.operatorKey, body: { tenant, permissions: ['ingest', 'read', 'search', 'write', 'admin'] } });
    const key = minted.body.key as string;
    const written = await tex('POST', '/ingestion/memory', key, { scope: { org_id: tenant, user_id: 'gus', session_id: 'chat-1' }, turns: [{ role: 'user', text: 'Gus collects tin robots.' }], options: { write_passive: false } });
    expect((await h.waitForJob(tenant, written.body.job_id)).status).toBe('completed');
    const erased = await deletion(key, { kind: 'user', value: 'gus' });
    expect((await tex('GET', `/me/deletions/${erased.body.request_id}`, key)).status).toBe(200);

    expect((await h.api('DELETE', `/v1/admin/tenants/${tenant}?confirm=${tenant}`, { key: h.operatorKey })).status).toBe(200);
    const receipts = `${h.config.ELASTICSEARCH_INDEX_PREFIX}-deletions`;
    await h.runtime.es.indices.refresh({ index: receipts });
    expect((await h.runtime.es.count({ index: receipts, query: { term: { tenant } } })).count).toBe(0);
  });
});
