import Supermemory, { toFile } from 'supermemory';
import { slowFetch } from './support/faults';
import { startHarness, type Harness } from './support/harness';

/**
 * supermemory's own TypeScript SDK (`supermemory` 4.25 from npm, as its users have it) pointed at
 * /compat/supermemory by its base URL alone: add documents (one, a batch, a file), follow them, list
 * them, update and delete them (one, in bulk), search, read a profile, forget and update memories.
 * The same calls through the harness's client also hold each answer to the OpenAPI document.
 */
describe("supermemory's SDK against /compat/supermemory", () => {
  let h: Harness;
  let acme: Supermemory;
  /** Another tenant's client: it sees none of acme's documents or memories. */
  let globex: Supermemory;
  beforeAll(async () => {
    // A document sent with metadata `test: "slow"` waits in its fetch stage, so a delete meets it still running.
    h = await startHarness({ wrapActivities: slowFetch(3000) });
    acme = new Supermemory({ apiKey: h.keys.acme!, baseURL: `${h.baseUrl}/compat/supermemory`, maxRetries: 0 });
    globex = new Supermemory({ apiKey: h.keys.globex!, baseURL: `${h.baseUrl}/compat/supermemory`, maxRetries: 0 });
  });
  afterAll(async () => h?.close());

  /** acme's document once its job has ended, as the SDK reads it. */
  const untilEnded = async (id: string) => {
    await h.waitForJob('acme', id);
    return acme.documents.get(id);
  };

  it('adds documents, follows them to done, and finds them by search and profile within their containerTag only', async () => {
    const priya = await acme.add({
      content: 'Priya prefers window seats on long flights. Priya is allergic to peanuts, so her meals must be nut-free.',
      containerTag: 'user-priya',
      customId: 'travel-prefs-priya',
      metadata: { source: 'crm', tier: 2 },
    });
    expect(priya).toEqual({ id: expect.any(String), status: 'queued' });
    const marco = await acme.add({ content: 'Marco prefers aisle seats and always travels with his cello.', containerTag: 'user-marco', metadata: { source: 'email' } });

    const document = await untilEnded(priya.id);
    expect(document).toMatchObject({
      id: priya.id,
      status: 'done',
      customId: 'travel-prefs-priya',
      containerTags: ['user-priya'],
      metadata: { source: 'crm', tier: 2 },
      type: 'text',
      url: null,
    });
    expect((await untilEnded(marco.id)).status).toBe('done');

    const found = await acme.search.memories({ q: 'which seat does she like on a plane?', containerTag: 'user-priya', limit: 5 });
    expect(found.results.length).toBeGreaterThan(0);
    expect(found.total).toBe(found.results.length);
    expect(found.results[0]!.memory).toMatch(/window seats/);
    for (const result of found.results) {
      expect(result.memory).not.toMatch(/Marco/);
      expect(result.similarity).toBeGreaterThan(0);
      expect(result.similarity).toBeLessThanOrEqual(1);
    }
    // The threshold keeps only results at least that similar; the best one's similarity keeps it alone or with equals.
    const best = found.results[0]!.similarity;
    const strict = await acme.search.memories({ q: 'which seat does she like on a plane?', containerTag: 'user-priya', threshold: best });
    expect(strict.results.map((result) => result.id)).toContain(found.results[0]!.id);
    expect(strict.results.every((result) => result.similarity >= best)).toBe(true);
    const tooStrict = found.results.length > 1 ? await acme.search.memories({ q: 'which seat does she like on a plane?', containerTag: 'user-priya', threshold: Math.min(1, best + 1e-6) }) : undefined;
    if (tooStrict) expect(tooStrict.results.length).toBeLessThan(found.results.length);

    // Metadata filters: equality under AND, or one key's values under OR.
    const bySource = await acme.search.memories({ q: 'seats', filters: { AND: [{ key: 'source', value: 'email' }] } });
    expect(bySource.results.length).toBeGreaterThan(0);
    expect(bySource.results.every((result) => (result.metadata as { source?: string }).source === 'email')).toBe(true);
    const either = await acme.search.memories({ q: 'seats', filters: { OR: [{ key: 'source', value: 'email' }, { key: 'source', value: 'crm' }] } });
    expect(new Set(either.results.map((result) => (result.metadata as { source?: string }).source))).toEqual(new Set(['email', 'crm']));
    await expect(acme.search.memories({ q: 'seats', filters: { AND: [{ key: 'source', value: 'crm', negate: true }] } })).rejects.toMatchObject({ status: 400 });

    // search.documents(): the same memories grouped by the document they came from.
    const documents = await acme.search.documents({ q: 'seats on flights', containerTags: ['user-priya', 'user-marco'], limit: 5 });
    expect(new Set(documents.results.map((result) => result.documentId))).toEqual(new Set([priya.id, marco.id]));
    const priyaDocument = documents.results.find((result) => result.documentId === priya.id)!;
    expect(priyaDocument).toMatchObject({ metadata: { source: 'crm', tier: 2 }, type: 'text' });
    expect(priyaDocument.chunks.some((chunk) => /window seats/.test(chunk.content))).toBe(true);
    expect(priyaDocument.score).toBe(Math.max(...priyaDocument.chunks.map((chunk) => chunk.score)));
    const within = await acme.search.execute({ q: 'seats on flights', docId: marco.id });
    expect(within.results.map((result) => result.documentId)).toEqual([marco.id]);

    const profile = await acme.profile({ containerTag: 'user-priya', q: 'food allergy' });
    const everything = [...profile.profile.static, ...profile.profile.dynamic, ...(profile.searchResults?.results ?? []).map((result) => (result as { memory: string }).memory)];
    expect(everything.some((text) => /peanuts/.test(text))).toBe(true);
    expect(everything.some((text) => /Marco/.test(text))).toBe(false);
    expect(profile.searchResults!.results.length).toBeGreaterThan(0);
  });

  /** acme's memories of a containerTag, as the native listing reads them: {id, text, metadata}. */
  const memoriesOf = async (containerTag: string) => {
    const listed = await h.api('POST', '/v1/memories/list', { body: { filters: { container_tags: [containerTag] }, page_size: 100 } });
    return listed.body.memories as { id: string; text: string; metadata?: Record<string, unknown>; updated_at?: string }[];
  };

  it('forgets memories by id or by exact content, within their containerTag only (memories.forget)', async () => {
    const text = 'Ana keeps her bike in the courtyard shed.';
    const added = await Promise.all([
      acme.add({ content: text, containerTag: 'forget-ana', customId: 'ana-notes' }),
      acme.add({ content: text, containerTag: 'forget-ana', customId: 'ana-chat' }),
      acme.add({ content: text, containerTag: 'forget-bob' }),
      acme.add({ content: 'Ana takes the 7:40 ferry to work on weekdays.', containerTag: 'forget-ana' }),
    ]);
    for (const { id } of added) expect((await untilEnded(id)).status).toBe('done');
    const ana = await memoriesOf('forget-ana');
    const bikes = ana.filter((memory) => memory.text === text);
    // The same text in two documents is two memories.
    expect(bikes).toHaveLength(2);
    const [bob] = (await memoriesOf('forget-bob')).filter((memory) => memory.text === text);
    expect(bob).toBeDefined();

    // By content: every memory of the containerTag with exactly that text, and none elsewhere.
    const forgotten = await acme.memories.forget({ containerTag: 'forget-ana', content: text, reason: 'sold the bike' });
    expect(forgotten).toEqual({ id: expect.any(String), forgotten: true, forgottenIds: expect.arrayContaining(bikes.map((memory) => memory.id)) });
    expect((forgotten as unknown as { forgottenIds: string[] }).forgottenIds).toHaveLength(2);
    expect((await memoriesOf('forget-ana')).some((memory) => memory.text === text)).toBe(false);
    expect((await memoriesOf('forget-bob')).map((memory) => memory.id)).toContain(bob!.id);
    expect((await acme.search.memories({ q: 'where is the bike kept?', containerTag: 'forget-ana' })).results.some((result) => result.memory === text)).toBe(false);
    // Nothing left with that text there; a text that differs at all is not the memory's.
    await expect(acme.memories.forget({ containerTag: 'forget-ana', content: text })).rejects.toMatchObject({ status: 404, error: { error: expect.stringMatching(/not found/) } });
    await expect(acme.memories.forget({ containerTag: 'forget-bob', content: text.toLowerCase() })).rejects.toMatchObject({ status: 404 });

    // By id: only within the memory's own containerTag, and only by the key's tenant.
    await expect(acme.memories.forget({ containerTag: 'forget-ana', id: bob!.id })).rejects.toMatchObject({ status: 404 });
    await expect(globex.memories.forget({ containerTag: 'forget-bob', id: bob!.id })).rejects.toMatchObject({ status: 404 });
    const byId = await h.api('DELETE', '/compat/supermemory/v4/memories', { body: { containerTag: 'forget-bob', id: bob!.id } });
    expect(byId.body).toEqual({ id: bob!.id, forgotten: true, forgottenIds: [bob!.id] });
    expect((await h.api('GET', `/v1/memories/${bob!.id}`)).status).toBe(404);
    await expect(acme.memories.forget({ containerTag: 'forget-bob', id: bob!.id })).rejects.toMatchObject({ status: 404 });

    // Naming no memory is the caller's error, in supermemory's shape.
    const unnamed = await h.api('DELETE', '/compat/supermemory/v4/memories', { body: { containerTag: 'forget-ana' } });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body).toEqual({ error: 'Invalid request parameters', details: expect.stringMatching(/id: name the memory/) });
    expect((await h.api('DELETE', '/compat/supermemory/v4/memories', { body: { id: bob!.id } })).status).toBe(400);
  });

  it('updates a memory in place by id or by exact content (memories.updateMemory)', async () => {
    const added = await acme.add({ content: 'Lena drinks her coffee black.', containerTag: 'update-lena', metadata: { source: 'chat' } });
    const other = await acme.add({ content: 'Lena drinks her coffee black.', containerTag: 'update-twice', customId: 'lena-a' });
    const again = await acme.add({ content: 'Lena drinks her coffee black.', containerTag: 'update-twice', customId: 'lena-b' });
    for (const { id } of [added, other, again]) await untilEnded(id);
    const [coffee] = (await memoriesOf('update-lena')).filter((memory) => memory.text === 'Lena drinks her coffee black.');
    expect(coffee).toBeDefined();

    const updated = await acme.memories.updateMemory({ containerTag: 'update-lena', id: coffee!.id, newContent: 'Lena now takes her coffee with oat milk.' });
    // Edited in place: the same id, and no version chain to name.
    expect(updated).toEqual({
      id: coffee!.id,
      memory: 'Lena now takes her coffee with oat milk.',
      createdAt: expect.any(String),
      forgetAfter: null,
      forgetReason: null,
      parentMemoryId: null,
      rootMemoryId: null,
      version: null,
    });
    const read = await h.api('GET', `/v1/memories/${coffee!.id}`);
    expect(read.body).toMatchObject({ text: 'Lena now takes her coffee with oat milk.', metadata: { source: 'chat' }, updated_at: updated.createdAt });
    const found = await acme.search.memories({ q: 'how does Lena take her coffee?', containerTag: 'update-lena' });
    expect(found.results.map((result) => result.memory)).toContain('Lena now takes her coffee with oat milk.');
    expect(found.results.map((result) => result.memory)).not.toContain('Lena drinks her coffee black.');

    // By content, with metadata: the metadata sent takes the place of the memory's; temporalContext is kept in it.
    const byContent = await acme.memories.updateMemory({
      containerTag: 'update-lena',
      content: 'Lena now takes her coffee with oat milk.',
      newContent: 'Lena has given up coffee for green tea.',
      metadata: { source: 'profile', confirmed: true },
      temporalContext: { documentDate: '2026-03-01' },
    });
    expect(byContent).toMatchObject({ id: coffee!.id, memory: 'Lena has given up coffee for green tea.' });
    expect((await h.api('GET', `/v1/memories/${coffee!.id}`)).body.metadata).toEqual({ source: 'profile', confirmed: true, temporalContext: { documentDate: '2026-03-01' } });
    // Metadata sent again without temporalContext keeps the memory's.
    await acme.memories.updateMemory({ containerTag: 'update-lena', id: coffee!.id, newContent: 'Lena has given up coffee for green tea.', metadata: { source: 'crm' } });
    expect((await h.api('GET', `/v1/memories/${coffee!.id}`)).body.metadata).toEqual({ source: 'crm', temporalContext: { documentDate: '2026-03-01' } });

    // Two memories with that text: which one is meant is the caller's to say.
    await expect(acme.memories.updateMemory({ containerTag: 'update-twice', content: 'Lena drinks her coffee black.', newContent: 'x' })).rejects.toMatchObject({
      status: 409,
      error: { details: expect.stringMatching(/2 memories .* name the one to update by its id/) },
    });
    // Another containerTag's memory, or text that no memory has: not found.
    await expect(acme.memories.updateMemory({ containerTag: 'update-twice', id: coffee!.id, newContent: 'x' })).rejects.toMatchObject({ status: 404 });
    await expect(acme.memories.updateMemory({ containerTag: 'update-lena', content: 'Lena drinks her coffee black.', newContent: 'x' })).rejects.toMatchObject({ status: 404 });
    // A scheduled forgetting Cairn would not carry out is refused by name; null (no expiry) is what every memory has.
    const expiring = await h.api('PATCH', '/compat/supermemory/v4/memories', { body: { containerTag: 'update-lena', id: coffee!.id, newContent: 'x', forgetAfter: '2030-01-01T00:00:00Z' } });
    expect(expiring.status).toBe(400);
    expect(expiring.body.details).toMatch(/forgetAfter: Cairn keeps no scheduled forgetting/);
    const reason = await h.api('PATCH', '/compat/supermemory/v4/memories', { body: { containerTag: 'update-lena', id: coffee!.id, newContent: 'x', forgetReason: 'stale' } });
    expect(reason.body.details).toMatch(/forgetReason/);
    const cleared = await h.api('PATCH', '/compat/supermemory/v4/memories', { body: { containerTag: 'update-lena', id: coffee!.id, newContent: 'Lena drinks green tea.', forgetAfter: null, forgetReason: null } });
    expect(cleared.status).toBe(200);
    expect((await h.api('PATCH', '/compat/supermemory/v4/memories', { body: { containerTag: 'update-lena', id: coffee!.id } })).body.details).toMatch(/newContent/);
  });

  /** documents.list() once it shows what `ready` waits for: a new document is listed within the index's refresh (a second). */
  const listedOnce = async (params: Parameters<Supermemory['documents']['list']>[0], ready: (ids: string[]) => boolean) => {
    for (let tries = 0; ; tries += 1) {
      const listed = await acme.documents.list(params);
      if (ready(listed.memories.map((document) => document.id)) || tries === 30) return listed;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  it('lists the documents it holds by containerTag, filepath and metadata, a page at a time (documents.list)', async () => {
    const a = await acme.add({ content: 'Runbook: restart the ingest worker with systemctl.', containerTag: 'list-ops', filepath: '/runbooks/worker.md', customId: 'runbook-worker', metadata: { team: 'infra' } });
    await untilEnded(a.id);
    const b = await acme.add({ content: 'Runbook: rotate the database password every quarter.', containerTag: 'list-ops', filepath: '/runbooks/db/password.md', metadata: { team: 'data' } });
    await untilEnded(b.id);
    const c = await acme.add({ content: 'Holiday rota: Kofi covers the last week of December.', containerTag: 'list-people', filepath: '/rota.md' });
    await untilEnded(c.id);

    const ops = await listedOnce({ containerTags: ['list-ops'] }, (ids) => ids.length === 2);
    expect(ops.pagination).toEqual({ currentPage: 1, totalItems: 2, totalPages: 1, limit: 10 });
    // Newest first, each as documents.get() reads it.
    expect(ops.memories.map((document) => document.id)).toEqual([b.id, a.id]);
    expect(ops.memories[1]).toMatchObject({
      id: a.id,
      status: 'done',
      customId: 'runbook-worker',
      filepath: '/runbooks/worker.md',
      metadata: { team: 'infra' },
      containerTags: ['list-ops'],
      type: 'text',
      connectionId: null,
      url: null,
    });
    expect((await acme.documents.list({ filepath: '/runbooks/worker.md' })).memories.map((document) => document.id)).toEqual([a.id]);
    expect((await acme.documents.list({ filepath: '/runbooks/', sort: 'createdAt', order: 'asc' })).memories.map((document) => document.id)).toEqual([a.id, b.id]);
    expect((await acme.documents.list({ filepath: '/runbooks' })).memories).toEqual([]);
    expect((await acme.documents.list({ filters: { AND: [{ key: 'team', value: 'data' }] } })).memories.map((document) => document.id)).toEqual([b.id]);
    // Pages of one, oldest first, as strings the way the SDK's types allow.
    const second = await acme.documents.list({ containerTags: ['list-ops'], limit: '1', page: '2', order: 'asc' });
    expect(second.memories.map((document) => document.id)).toEqual([b.id]);
    expect(second.pagination).toEqual({ currentPage: 2, totalItems: 2, totalPages: 2, limit: 1 });

    // A new version under the same customId is the same document, listed under the id of the version it holds.
    const newer = await acme.add({ content: 'Runbook: restart the ingest worker with its supervisor.', containerTag: 'list-ops', filepath: '/runbooks/worker.md', customId: 'runbook-worker', metadata: { team: 'infra' } });
    await untilEnded(newer.id);
    const replaced = await listedOnce({ containerTags: ['list-ops'] }, (ids) => ids.includes(newer.id));
    expect(replaced.memories.map((document) => document.id).sort()).toEqual([newer.id, b.id].sort());

    // A deleted document is no longer listed; another tenant lists none of these.
    await acme.documents.delete(c.id);
    expect((await acme.documents.list({ containerTags: ['list-people'] })).memories).toEqual([]);
    expect((await globex.documents.list({ containerTags: ['list-ops'] })).pagination.totalItems).toBe(0);

    const viaHarness = await h.api('POST', '/compat/supermemory/v3/documents/list', { body: { containerTags: ['list-ops'], sort: 'updatedAt' } });
    expect(viaHarness.body.memories).toHaveLength(2);
    const withContent = await h.api('POST', '/compat/supermemory/v3/documents/list', { body: { includeContent: true } });
    expect(withContent.status).toBe(400);
    expect(withContent.body.details).toMatch(/includeContent: Cairn does not serve/);
    expect((await h.api('POST', '/compat/supermemory/v3/documents/list', { body: { limit: 0 } })).body.details).toMatch(/limit/);
  });

  it('updates a document as a new version: new content, or its stored content under new tags and metadata (documents.update)', async () => {
    const added = await acme.add({ content: 'The office wifi password is tulip-42.', containerTag: 'update-office', metadata: { topic: 'it' } });
    await untilEnded(added.id);
    const wifi = async (containerTag: string) => (await acme.search.memories({ q: 'office wifi password', containerTag })).results.map((result) => result.memory).join(' | ');
    expect(await wifi('update-office')).toMatch(/tulip-42/);

    // New content: a new version, under its own id; the earlier version's memories go once it is done.
    const updated = await acme.documents.update(added.id, { content: 'The office wifi password is now maple-77.' });
    expect(updated).toEqual({ id: expect.any(String), status: 'queued' });
    expect(updated.id).not.toBe(added.id);
    expect(await untilEnded(updated.id)).toMatchObject({ status: 'done', containerTags: ['update-office'], metadata: { topic: 'it' } });
    expect(await wifi('update-office')).toMatch(/maple-77/);
    expect(await wifi('update-office')).not.toMatch(/tulip-42/);

    // No content: what is stored is read again, under the containerTag and metadata sent.
    const moved = await h.api('PATCH', `/compat/supermemory/v3/documents/${updated.id}`, { body: { containerTag: 'update-facilities', metadata: { topic: 'facilities' } } });
    expect(moved.status).toBe(200);
    expect(await untilEnded(moved.body.id)).toMatchObject({ status: 'done', containerTags: ['update-facilities'], metadata: { topic: 'facilities' } });
    expect(await wifi('update-facilities')).toMatch(/maple-77/);
    expect(await wifi('update-office')).toBe('');
    const listed = await listedOnce({ containerTags: ['update-facilities'] }, (ids) => ids.includes(moved.body.id));
    expect(listed.memories.map((document) => document.id)).toEqual([moved.body.id]);

    // A conversation is not a document to update: a Tex session, built up by two writes, is refused
    // (read again from one of its uploads, it lost the other's turns and escaped a Tex forget).
    const tex = async (text: string) => (await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'acme', user_id: 'u1', session_id: 'update-s1' }, turns: [{ role: 'user', text }] } })).body.job_id as string;
    await tex('I am allergic to shellfish.');
    const second = await tex('I moved to Porto last spring.');
    await h.waitForJob('acme', second);
    const session = await h.api('PATCH', `/compat/supermemory/v3/documents/${second}`, { body: {} });
    expect([session.status, session.body.details]).toEqual([400, expect.stringMatching(/is a conversation/)]);

    // A customId names the document: an update does not change it.
    await expect(acme.documents.update(moved.body.id, { customId: 'wifi' })).rejects.toMatchObject({ status: 400, error: { details: expect.stringMatching(/customId/) } });
    // A document that stored nothing, or was deleted, or is another tenant's, has nothing to update.
    const refused = await acme.add({ content: 'http://127.0.0.1:9/nothing-here', containerTag: 'update-office' });
    expect((await untilEnded(refused.id)).status).toBe('failed');
    await expect(acme.documents.update(refused.id, { content: 'text' })).rejects.toMatchObject({ status: 409, error: { details: expect.stringMatching(/stored nothing/) } });
    await expect(globex.documents.update(moved.body.id, { content: 'mine now' })).rejects.toMatchObject({ status: 404 });
    await acme.documents.delete(moved.body.id);
    await expect(acme.documents.update(moved.body.id, { content: 'again' })).rejects.toMatchObject({ status: 404 });
  });

  it('adds documents by the batch, each as an add with the batch\'s defaults, naming the ones it refused (documents.batchAdd)', async () => {
    const batch = await acme.documents.batchAdd({
      documents: [
        { content: 'Yuki runs the Osaka office.' },
        { content: 'Yuki likes matcha in the afternoon.', containerTag: 'batch-yuki', metadata: { confidence: 'high' } },
        { content: '' },
      ],
      containerTag: 'batch-team',
      metadata: { imported: 'hr' },
    });
    expect(batch).toMatchObject({ success: 2, failed: 1 });
    expect(batch.results).toEqual([
      { id: expect.any(String), status: 'queued' },
      { id: expect.any(String), status: 'queued' },
      { id: '', status: 'error', error: 'validation_error', details: expect.stringMatching(/content/) },
    ]);
    expect(await untilEnded(batch.results[0]!.id)).toMatchObject({ status: 'done', containerTags: ['batch-team'], metadata: { imported: 'hr' } });
    expect(await untilEnded(batch.results[1]!.id)).toMatchObject({ status: 'done', containerTags: ['batch-yuki'], metadata: { imported: 'hr', confidence: 'high' } });
    expect((await acme.search.memories({ q: 'who runs the Osaka office?', containerTag: 'batch-team' })).results[0]!.memory).toMatch(/Osaka office/);

    // Plain strings are contents; through the harness, the answer is held to the OpenAPI document.
    const strings = await h.api('POST', '/compat/supermemory/v3/documents/batch', { body: { documents: ['Yuki bikes to work.'], containerTags: ['batch-team'] } });
    expect(strings.body).toEqual({ results: [{ id: expect.any(String), status: 'queued' }], success: 1, failed: 0 });
    await untilEnded(strings.body.results[0].id);
    // A batch that adds nothing is refused whole, naming each document.
    const nothing = await h.api('POST', '/compat/supermemory/v3/documents/batch', { body: { documents: [{ content: '' }, { containerTag: 'x' }] } });
    expect(nothing.status).toBe(400);
    expect(nothing.body.details).toMatch(/documents\.0: content.*documents\.1: content/);
    expect((await h.api('POST', '/compat/supermemory/v3/documents/batch', { body: { documents: [] } })).status).toBe(400);
  });

  it('deletes documents in bulk by ids, or by containerTags and filepath, with their memories (documents.deleteBulk)', async () => {
    const add = (content: string, containerTag: string, filepath: string) => acme.add({ content, containerTag, filepath });
    const one = await add('Bulk note one: the printer toner is in cabinet A.', 'bulk-a', '/bulk/one.md');
    const two = await add('Bulk note two: the projector remote is in the red box.', 'bulk-a', '/bulk/sub/two.md');
    const three = await add('Bulk note three: the spare chairs are in room 4.', 'bulk-b', '/keep/three.md');
    const four = await add('Bulk note four: the first-aid kit is by the lifts.', 'bulk-b', '/bulk/four.md');
    for (const { id } of [one, two, three, four]) await untilEnded(id);
    const texts = async (containerTag: string) => (await memoriesOf(containerTag)).map((memory) => memory.text).join(' | ');

    const byIds = await acme.documents.deleteBulk({ ids: [one.id, 'no-such-document'] });
    expect(byIds).toEqual({ deletedCount: 1, success: false, errors: [{ id: 'no-such-document', error: expect.stringMatching(/not found/) }] });
    expect(await texts('bulk-a')).not.toMatch(/toner/);
    expect(await texts('bulk-a')).toMatch(/projector/);

    // Both filters: documents of the containerTag under the path.
    const byTagAndPath = await acme.documents.deleteBulk({ containerTags: ['bulk-b'], filepath: '/bulk/' });
    expect(byTagAndPath).toEqual({ deletedCount: 1, success: true, containerTags: ['bulk-b'] });
    expect(await texts('bulk-b')).not.toMatch(/first-aid/);
    expect(await texts('bulk-b')).toMatch(/spare chairs/);
    const byPath = await h.api('DELETE', '/compat/supermemory/v3/documents/bulk', { body: { filepath: '/bulk/sub/two.md' } });
    expect(byPath.body).toEqual({ deletedCount: 1, success: true });
    expect(await texts('bulk-a')).toBe('');

    // Another tenant's ids are not found; a document still being processed is left, and named.
    expect(await globex.documents.deleteBulk({ ids: [three.id] })).toMatchObject({ deletedCount: 0, success: false });
    expect(await texts('bulk-b')).toMatch(/spare chairs/);
    const fresh = await acme.add({ content: 'Bulk note five: the visitor badges are at reception.', containerTag: 'bulk-b', metadata: { test: 'slow' } });
    const early = await acme.documents.deleteBulk({ ids: [fresh.id] });
    expect(early).toEqual({ deletedCount: 0, success: false, errors: [{ id: fresh.id, error: expect.stringMatching(/still being processed/) }] });
    await untilEnded(fresh.id);
    // Done is listed, at once: the bulk delete right after deletes it with the other.
    expect((await acme.documents.list({ containerTags: ['bulk-b'] })).memories.map((document) => document.id)).toContain(fresh.id);
    expect(await acme.documents.deleteBulk({ containerTags: ['bulk-b'] })).toEqual({ deletedCount: 2, success: true, containerTags: ['bulk-b'] });
    expect(await texts('bulk-b')).toBe('');

    // Naming nothing (or both ways at once) is refused: a bulk delete never means everything.
    expect((await h.api('DELETE', '/compat/supermemory/v3/documents/bulk', { body: {} })).status).toBe(400);
    expect((await h.api('DELETE', '/compat/supermemory/v3/documents/bulk', { body: { ids: [three.id], containerTags: ['bulk-b'] } })).body.details).toMatch(/give ids, or containerTags/);
  });

  it('deletes in bulk by containerTag the documents documents.list shows under it, not one moved away whose edited memory kept the old tag', async () => {
    const added = await acme.add({ content: 'Marta teaches salsa every Thursday on Rua Augusta.', containerTag: 'salsa-p', customId: 'salsa' });
    await untilEnded(added.id);
    const [memory] = await memoriesOf('salsa-p');
    await acme.memories.updateMemory({ containerTag: 'salsa-p', id: memory!.id, newContent: 'Marta teaches salsa every Friday on Rua Augusta.' });
    const moved = await acme.documents.update(added.id, { containerTag: 'salsa-q' });
    await untilEnded(moved.id);
    await listedOnce({ containerTags: ['salsa-q'] }, (ids) => ids.includes(moved.id));
    expect((await acme.documents.list({ containerTags: ['salsa-p'] })).memories).toHaveLength(0);
    expect(await acme.documents.deleteBulk({ containerTags: ['salsa-p'] })).toEqual({ deletedCount: 0, success: true, containerTags: ['salsa-p'] });
    expect((await acme.documents.list({ containerTags: ['salsa-q'] })).memories).toHaveLength(1);
  });

  it('lists the documents still being processed, until they are done (documents.listProcessing)', async () => {
    const slow = await acme.add({ content: 'Processing note: the boiler is serviced in May.', containerTag: 'processing', customId: 'boiler-note', metadata: { test: 'slow' } });
    const processing = await acme.documents.listProcessing();
    const listed = processing.documents.find((document) => document.id === slow.id);
    expect(listed).toEqual({
      id: slow.id,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      customId: 'boiler-note',
      metadata: { test: 'slow' },
      status: expect.stringMatching(/^(queued|extracting)$/),
      title: null,
      type: 'text',
      containerTags: ['processing'],
    });
    expect(processing.totalCount).toBe(processing.documents.length);
    expect((await globex.documents.listProcessing()).documents.map((document) => document.id)).not.toContain(slow.id);

    await untilEnded(slow.id);
    const after = await h.api('GET', '/compat/supermemory/v3/documents/processing');
    expect(after.status).toBe(200);
    expect(after.body.documents.map((document: { id: string }) => document.id)).not.toContain(slow.id);
  });

  it('answers as the OpenAPI document says, including the @supermemory/tools middleware\'s profile call', async () => {
    const added = await h.api('POST', '/compat/supermemory/v3/documents', { body: { content: 'Ines runs the Lisbon office and likes green tea.', containerTags: ['team-lisbon'] } });
    expect(added.status).toBe(200);
    await h.waitForJob('acme', added.body.id);
    const read = await h.api('GET', `/compat/supermemory/v3/documents/${added.body.id}`);
    expect(read.body).toMatchObject({ status: 'done', containerTags: ['team-lisbon'], customId: null });
    // What the middleware sends before each model call (dist/shared/memory-client.js).
    const profile = await h.api('POST', '/compat/supermemory/v4/profile', { body: { q: 'what does Ines drink?', containerTag: 'team-lisbon', include: ['static', 'dynamic'] } });
    expect(profile.status).toBe(200);
    expect(profile.body.searchResults.results[0].memory).toMatch(/green tea/);
    const profileOnly = await h.api('POST', '/compat/supermemory/v4/profile', { body: { containerTag: 'team-lisbon' } });
    expect(profileOnly.body.searchResults).toBeUndefined();
    expect([...profileOnly.body.profile.static, ...profileOnly.body.profile.dynamic].join(' ')).toMatch(/Lisbon office/);
    const chunks = await h.api('POST', '/compat/supermemory/v4/search', { body: { q: 'green tea', searchMode: 'documents' } });
    expect(chunks.body.results[0]).toMatchObject({ chunk: expect.stringMatching(/green tea/) });
    expect(chunks.body.results[0].memory).toBeUndefined();
    const grouped = await h.api('POST', '/compat/supermemory/v3/search', { body: { q: 'green tea', containerTag: 'team-lisbon', chunkThreshold: 0 } });
    expect(grouped.body.results).toEqual([expect.objectContaining({ documentId: added.body.id, chunks: [expect.objectContaining({ content: expect.stringMatching(/green tea/), isRelevant: true })] })]);

    const empty = await h.api('POST', '/compat/supermemory/v3/documents', { body: { content: '' } });
    expect(empty.status).toBe(400);
    expect(empty.body).toEqual({ error: 'Invalid request parameters', details: expect.stringMatching(/content/) });
    const nested = await h.api('POST', '/compat/supermemory/v4/search', { body: { q: 'tea', filters: { AND: [{ OR: [{ key: 'a', value: 'b' }] }] } } });
    expect(nested.status).toBe(400);
    expect(nested.body.details).toMatch(/nested AND\/OR is not supported/);
  });

  it('takes files as documents.uploadFile() sends them, refusing kinds Cairn does not read', async () => {
    const uploaded = await acme.documents.uploadFile({
      file: await toFile(Buffer.from('# House notes\n\nThe boiler service is due every March; the engineer is Halvard.'), 'house.md'),
      containerTags: JSON.stringify(['house', 'maintenance']),
      metadata: JSON.stringify({ room: 'basement' }),
      filepath: '/notes/house.md',
    });
    expect(uploaded).toEqual({ id: expect.any(String), status: 'queued' });
    expect(await untilEnded(uploaded.id)).toMatchObject({ status: 'done', containerTags: ['house', 'maintenance'], metadata: { room: 'basement' }, filepath: '/notes/house.md', title: 'House notes' });
    const found = await acme.search.memories({ q: 'when is the boiler serviced?', containerTag: 'maintenance' });
    expect(found.results[0]!.memory).toMatch(/boiler service/);
    // One tag as a plain string, as the SDK's docs allow.
    const single = await acme.documents.uploadFile({ file: await toFile(Buffer.from('Garden shed key: under the blue pot.'), 'shed.txt'), containerTags: 'garden' });
    expect((await untilEnded(single.id)).containerTags).toEqual(['garden']);
    await expect(acme.documents.uploadFile({ file: await toFile(Buffer.from('GIF89a'), 'cat.gif'), fileType: 'image', mimeType: 'image/gif' })).rejects.toMatchObject({ status: 415 });
    const viaHarness = await h.api('POST', '/compat/supermemory/v3/documents/file', { body: { containerTag: 'x' } });
    expect(viaHarness.status).toBe(415);
  });

  it('ends a refused URL failed, keeps documents to their tenant, and deletes a document with its memories', async () => {
    const refused = await acme.add({ content: 'http://127.0.0.1:9/secret', containerTag: 'user-priya' });
    const failed = await untilEnded(refused.id);
    expect(failed).toMatchObject({ status: 'failed', type: 'webpage', url: 'http://127.0.0.1:9/secret' });

    const added = await acme.add({ content: 'Tomas keeps the spare office keys in the blue drawer.', containerTag: 'office' });
    await untilEnded(added.id);
    await expect(globex.documents.get(added.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.documents.delete(added.id)).rejects.toMatchObject({ status: 404 });
    expect((await globex.search.memories({ q: 'spare office keys' })).results).toEqual([]);

    expect((await acme.search.memories({ q: 'spare office keys', containerTag: 'office' })).results.length).toBeGreaterThan(0);
    await acme.documents.delete(added.id);
    expect((await acme.search.memories({ q: 'spare office keys', containerTag: 'office' })).results).toEqual([]);
    // A document whose job stored nothing has nothing to delete: done, not an error.
    await acme.documents.delete(refused.id);
  });
});
