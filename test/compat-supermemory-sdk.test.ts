import Supermemory, { toFile } from 'supermemory';
import { startHarness, type Harness } from './support/harness';

/**
 * supermemory's own TypeScript SDK (`supermemory` 4.25 from npm, as its users have it) pointed at
 * /compat/supermemory by its base URL alone: add a document, follow it, search, read a profile, delete.
 * The same calls through the harness's client also hold each answer to the OpenAPI document.
 */
describe("supermemory's SDK against /compat/supermemory", () => {
  let h: Harness;
  let acme: Supermemory;
  beforeAll(async () => {
    h = await startHarness();
    acme = new Supermemory({ apiKey: h.keys.acme!, baseURL: `${h.baseUrl}/compat/supermemory`, maxRetries: 0 });
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
    const globex = new Supermemory({ apiKey: h.keys.globex!, baseURL: `${h.baseUrl}/compat/supermemory`, maxRetries: 0 });
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
