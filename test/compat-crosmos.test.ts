import { startHarness, type Harness } from './support/harness';

const searchFor = async (h: Harness, query: string, key?: string) =>
  (await h.api('POST', '/v1/search', { key, body: { query, mode: 'bm25', top_k: 20 } })).body.results as { text: string; scope: { space_id?: string } }[];

describe('Crosmos surface (/compat/crosmos)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it("accepts the seed's conversation, completes the job and makes the turns searchable", async () => {
    const spaceId = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
    const response = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: {
        space_id: spaceId,
        messages: [
          { role: 'user', content: 'I moved to Porto last spring and started learning the cavaquinho.' },
          { role: 'assistant', content: 'That sounds lovely. How are the lessons going?' },
        ],
        session_date: '2026-05-08',
        meta: { channel: 'web' },
      },
    });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({
      job_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'pending',
      source_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    });
    expect((await h.waitForJob('acme', response.body.job_id)).status).toBe('completed');
    // The Crosmos SDK's jobs.get_status(): GET /api/v1/jobs/{job_id}.
    const job = await h.api('GET', `/compat/crosmos/api/v1/jobs/${response.body.job_id}`);
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({ job_id: response.body.job_id, status: 'completed', source_ids: [response.body.source_id], error_message: null, completed_at: expect.any(String) });
    expect(job.body.result).toMatchObject({ memory_count: expect.any(Number), source_ids: [response.body.source_id], failed_source_ids: [] });
    expect(job.body.result.memory_count).toBeGreaterThan(0);
    expect((await h.api('GET', `/compat/crosmos/api/v1/jobs/${response.body.job_id}`, { key: h.keys.globex })).status).toBe(404);
    // The native source routes take the UUID this surface answers with.
    const source = await h.api('GET', `/v1/sources/${response.body.source_id}`);
    expect(source.status).toBe(200);
    expect(source.body.id).toBe(`src_${response.body.source_id.replaceAll('-', '')}`);
    const hits = await searchFor(h, 'cavaquinho Porto');
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0]!.scope.space_id).toBe(spaceId);
    expect(await searchFor(h, 'cavaquinho Porto', h.keys.globex)).toHaveLength(0);
    expect((await h.api('GET', `/v1/jobs/${response.body.job_id}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('files one conversation sent to two spaces as two sources, and a re-send to the same space as the same one', async () => {
    const spaces = ['0b5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c01', '0b5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c02'];
    const body = (spaceId: string) => ({ space_id: spaceId, messages: [{ role: 'user', content: 'My neighbour Bartholomew keeps seven tortoises in his garden.' }] });
    const send = async (spaceId: string) => {
      const response = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: body(spaceId) });
      expect(response.status).toBe(202);
      expect((await h.waitForJob('acme', response.body.job_id)).status).toBe('completed');
      return response.body.source_id as string;
    };
    const first = await send(spaces[0]!);
    const second = await send(spaces[1]!);
    expect(second).not.toBe(first);
    // The same UUID in capitals is the same space (FastAPI parses it to one UUID).
    const again = await send(spaces[0]!.toUpperCase());
    expect(again).toBe(first);
    // So is its bare 32-digit form (Python's uuid4().hex), braced or urn form: pydantic reads all four.
    for (const form of [spaces[0]!.replaceAll('-', ''), `{${spaces[0]}}`, `urn:uuid:${spaces[0]}`]) {
      expect(await send(form)).toBe(first);
    }
    const hits = (await searchFor(h, 'Bartholomew tortoises')).filter((hit) => hit.text.includes('Bartholomew'));
    // One memory in each space: neither job moved the other's into its own space, and the re-send added none.
    expect(hits.map((hit) => hit.scope.space_id).sort()).toEqual([...spaces].sort());
    // Any UUID, as pydantic takes it, not only RFC 4122 variants.
    const nonRfc = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { ...body('11111111-1111-1111-1111-111111111111'), messages: [{ role: 'user', content: 'A space with a test UUID.' }] } });
    expect(nonRfc.status).toBe(202);
  });

  it("searches a space as the Crosmos SDK's search.hybrid() asks, finding nothing of another space or tenant", async () => {
    const space = 'c0ffee00-1d3c-4c55-9d0e-6f0a2a9b1c01';
    const other = 'c0ffee00-1d3c-4c55-9d0e-6f0a2a9b1c02';
    for (const [spaceId, content] of [
      [space, 'Wilhelmina restores antique clocks in her workshop in Utrecht.'],
      [other, 'Wilhelmina restores antique clocks for the museum in Ghent.'],
    ] as const) {
      const sent = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: spaceId, session_date: '2026-03-02', messages: [{ role: 'user', content }] } });
      await h.waitForJob('acme', sent.body.job_id);
    }
    // The body the SDK sends: every parameter it was given, here the usual ones.
    const search = (body: Record<string, unknown>, key?: string) => h.api('POST', '/compat/crosmos/api/v1/search', { key, body: { query: 'who repairs old clocks?', limit: 5, rerank: true, ...body } });
    const found = await search({ space_id: space.toUpperCase(), include_source: true });
    expect(found.status).toBe(200);
    expect(found.body.query).toBe('who repairs old clocks?');
    expect(found.body.candidates.length).toBeGreaterThan(0);
    expect(found.body.candidates[0]).toMatchObject({
      memory_id: expect.stringMatching(/^mem_/),
      content: expect.stringMatching(/Utrecht/),
      memory_type: expect.any(String),
      event_time: expect.stringMatching(/^2026-03-02/),
      owner_name: 'user',
      source: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    for (const candidate of found.body.candidates) {
      expect(candidate.content).not.toMatch(/Ghent/);
      expect(candidate.score).toBeGreaterThan(0);
      expect(candidate.score).toBeLessThanOrEqual(1);
    }
    expect((await search({ space_id: space })).body.candidates[0].source).toBeNull();
    expect((await search({ space_id: space }, h.keys.globex)).body.candidates).toEqual([]);
    const missing = await search({ space_id: 'not-a-uuid' });
    expect(missing.status).toBe(422);
    expect(missing.body.detail[0].loc).toEqual(['body', 'space_id']);
  });

  it('accepts a conversation over 5 MB (the seed allows 500 messages of 100,000 characters), up to the 16 MB conversation limit', async () => {
    const message = (i: number) => ({ role: i % 2 ? 'assistant' : 'user', content: `Turn ${i}: ${'lorem ipsum dolor '.repeat(5_500)}`.slice(0, 100_000) });
    const large = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: '0b5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c03', messages: Array.from({ length: 60 }, (_, i) => message(i)) },
    });
    expect(large.status).toBe(202);
    // Six million characters would keep the test's worker busy for minutes: the job is stopped here.
    expect((await h.api('POST', `/v1/jobs/${large.body.job_id}/cancel`)).status).toBeLessThan(300);
    const tooLarge = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: '0b5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c03', messages: Array.from({ length: 170 }, (_, i) => message(i)) },
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toEqual({ detail: expect.any(String) });
  });

  it('answers validation errors as 422 {detail: [{loc, msg, type}]}', async () => {
    const bad = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: 'not-a-uuid', messages: [{ role: '', content: 'x' }] },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ loc: ['body', 'space_id'], msg: expect.any(String), type: expect.any(String) }),
        expect.objectContaining({ loc: ['body', 'messages', 0, 'role'], type: 'string_too_short' }),
      ]),
    );
    // A job id that cannot be one is named where it was: in the path.
    const badId = await h.api('GET', `/compat/crosmos/api/v1/jobs/${'x'.repeat(200)}`);
    expect([badId.status, badId.body.detail[0].loc]).toEqual([422, ['path', 'id']]);
    // Only the forms pydantic reads: not half the hyphens, one brace, or spaces around it.
    for (const spaceId of ['3fa85f64-57174562-b3fc-2c963f66afa6', '{3fa85f64-5717-4562-b3fc-2c963f66afa6', ' 3fa85f64-5717-4562-b3fc-2c963f66afa6', '{3fa85f64-5717-4562b3fc2c963f66afa6}']) {
      const odd = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: spaceId, messages: [{ role: 'user', content: 'x' }] } });
      expect([spaceId, odd.status, odd.body.detail?.[0]?.loc]).toEqual([spaceId, 422, ['body', 'space_id']]);
    }
    // Metadata past its bounds (here 17 levels deep) is refused on its own field.
    const deep = JSON.parse(`${'{"a":'.repeat(17)}1${'}'.repeat(17)}`);
    const deepMeta = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', messages: [{ role: 'user', content: 'x' }], meta: deep } });
    expect(deepMeta.status).toBe(422);
    expect(deepMeta.body.detail[0].loc.slice(0, 2)).toEqual(['body', 'meta']);
    const missing = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: '3fa85f64-5717-4562-b3fc-2c963f66afa6' } });
    expect(missing.status).toBe(422);
    expect(missing.body.detail[0]).toMatchObject({ loc: ['body', 'messages'], type: 'missing' });
    const tooMany = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', messages: Array.from({ length: 501 }, () => ({ role: 'user', content: 'x' })) },
    });
    expect(tooMany.status).toBe(422);
    const badDate = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', messages: [{ role: 'user', content: 'x' }], session_date: 'sometime soonish' },
    });
    expect(badDate.status).toBe(422);
    expect(badDate.body.detail).toEqual([expect.objectContaining({ loc: ['body', 'session_date'], msg: expect.stringMatching(/not a date/) })]);
    // A day the month does not have is refused too, not rolled over into the next month.
    const notOnTheCalendar = await h.api('POST', '/compat/crosmos/api/v1/conversations', {
      body: { space_id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', messages: [{ role: 'user', content: 'x' }], session_date: '2024-02-30' },
    });
    expect([notOnTheCalendar.status, notOnTheCalendar.body.detail?.[0]?.loc]).toEqual([422, ['body', 'session_date']]);
    const malformed = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: '{"space_id":', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(422);
    expect(malformed.body.detail).toEqual(expect.any(Array));
  });

  it("reads and deletes a space's sources, memories and entities as the Crosmos SDK's sources, memories and entities resources ask", async () => {
    const space = 'ab5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c01';
    const other = 'ab5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c02';
    const send = async (spaceId: string, messages: { role: string; content: string }[]) => {
      const sent = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: spaceId, session_date: '2026-04-01', meta: { channel: 'web' }, messages } });
      expect((await h.waitForJob('acme', sent.body.job_id)).status).toBe('completed');
      return sent.body.source_id as string;
    };
    const mine = await send(space, [
      { role: 'user', content: 'Theodora Vasquez coaches the rowing team in Seville.' },
      { role: 'assistant', content: 'Does Theodora Vasquez row herself?' },
    ]);
    const second = await send(space, [{ role: 'user', content: 'I prefer green tea in the morning.' }]);
    await send(other, [{ role: 'user', content: 'Maximilian Oberhauser repairs bicycles in Graz.' }]);
    const get = (path: string, query: Record<string, string | number>, key?: string) => h.api('GET', `/compat/crosmos/api/v1/${path}?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`, { key });

    // sources.list / sources.get: the space's sources, with their last job's status; another space's or tenant's: 404.
    const sources = await get('sources', { space_id: space });
    expect(sources.status).toBe(200);
    expect(sources.body).toMatchObject({ count: 2, total: 2 });
    expect(sources.body.sources.map((source: { id: string }) => source.id).sort()).toEqual([mine, second].sort());
    expect(sources.body.sources[0]).toMatchObject({ content_type: 'conversation', extraction_status: 'completed', space_id: space, meta: { channel: 'web' }, content_preview: null, token_count: null });
    const paged = await get('sources', { space_uuid: space, limit: 1, offset: 1 });
    expect(paged.body).toMatchObject({ count: 1, total: 2 });
    const source = await get(`sources/${mine}`, { space_id: space });
    expect(source.body).toMatchObject({ id: mine, content: null, extraction_status: 'completed', space_id: space, created_at: expect.any(String) });
    expect((await get(`sources/${mine}`, { space_id: other })).status).toBe(404);
    expect((await get(`sources/${mine}`, { space_id: space }, h.keys.globex)).status).toBe(404);

    // memories.list / memories.get: the space's memories, newest or oldest first, by type.
    const newest = await get('memories', { space_id: space, limit: 100 });
    expect(newest.status).toBe(200);
    expect(newest.body.count).toBe(newest.body.memories.length);
    expect(newest.body.memories.length).toBeGreaterThanOrEqual(3);
    expect(newest.body.memories.every((memory: { space_id: string }) => memory.space_id === space)).toBe(true);
    expect(JSON.stringify(newest.body)).not.toMatch(/Oberhauser/);
    const oldest = await get('memories', { space_id: space, limit: 100, order: 'asc' });
    expect(oldest.body.memories.map((memory: { id: string }) => memory.id)).toEqual(newest.body.memories.map((memory: { id: string }) => memory.id).reverse());
    const tea = newest.body.memories.find((memory: { content: string }) => memory.content.includes('green tea'));
    expect(tea).toMatchObject({ id: expect.stringMatching(/^mem_/), event_time: expect.stringMatching(/^2026-04-01/), meta: { channel: 'web' }, access_frequency: null, last_accessed_at: null, importance_score: null, forgotten_at: null });
    const typed = await get('memories', { space_id: space, memory_type: tea.memory_type });
    expect(typed.body.memories.every((memory: { memory_type: string }) => memory.memory_type === tea.memory_type)).toBe(true);
    expect((await get(`memories/${tea.id}`, { space_id: space })).body).toEqual(tea);
    expect((await get(`memories/${tea.id}`, { space_id: other })).status).toBe(404);
    expect((await get(`memories/${tea.id}`, { space_id: space }, h.keys.globex)).status).toBe(404);

    // entities.list / entities.get: the entities the space's memories name, with those memories.
    const entities = await get('entities', { space_id: space, sort_by: 'name' });
    expect(entities.status).toBe(200);
    const theodora = entities.body.entities.find((entity: { name: string }) => /Theodora/.test(entity.name));
    expect(theodora).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), edge_count: 0, space_id: space, created_at: expect.any(String) });
    expect(entities.body.total).toBe(entities.body.entities.length);
    expect(JSON.stringify(entities.body)).not.toMatch(/Oberhauser/);
    const detail = await get(`entities/${theodora.id}`, { space_id: space });
    expect(detail.body).toMatchObject({ id: theodora.id, name: theodora.name, memories: expect.arrayContaining([expect.objectContaining({ content: expect.stringMatching(/rowing/) })]) });
    expect((await get(`entities/${theodora.id}`, { space_id: other })).status).toBe(404);
    expect((await get(`entities/${theodora.id}`, { space_id: space }, h.keys.globex)).status).toBe(404);

    // memories.delete, sources.delete: 204; another space's id is not deleted.
    expect((await h.api('DELETE', `/compat/crosmos/api/v1/memories/${tea.id}?space_id=${other}`)).status).toBe(404);
    expect((await h.api('DELETE', `/compat/crosmos/api/v1/memories/${tea.id}?space_id=${space}`)).status).toBe(204);
    expect((await get(`memories/${tea.id}`, { space_id: space })).status).toBe(404);
    expect((await h.api('DELETE', `/compat/crosmos/api/v1/sources/${mine}?space_id=${other}`)).status).toBe(404);
    expect((await h.api('DELETE', `/compat/crosmos/api/v1/sources/${mine}?space_id=${space}`)).status).toBe(204);
    expect((await get(`sources/${mine}`, { space_id: space })).status).toBe(404);
    expect(JSON.stringify((await get('memories', { space_id: space, limit: 100 })).body)).not.toMatch(/rowing/);

    // What Cairn cannot answer is a 422 naming the query parameter, not ignored.
    const unscoped = await get('memories', {});
    expect([unscoped.status, unscoped.body.detail[0].loc]).toEqual([422, ['query', 'space_id']]);
    const byImportance = await get('memories', { space_id: space, sort_by: 'importance_score' });
    expect([byImportance.status, byImportance.body.detail[0].loc]).toEqual([422, ['query', 'sort_by']]);
    const byEdges = await get('entities', { space_id: space, sort_by: 'edge_count' });
    expect(byEdges.status).toBe(422);
    const byStatus = await get('sources', { space_id: space, extraction_status: 'completed' });
    expect([byStatus.status, byStatus.body.detail[0].loc]).toEqual([422, ['query', 'extraction_status']]);
    expect((await get('sources', { space_id: space, limit: 101 })).status).toBe(422);
  });

  it("names, lists, ingests into and deletes spaces as the Crosmos SDK's spaces and sources.ingest() ask", async () => {
    const spaces = '/compat/crosmos/api/v1/spaces';
    const created = await h.api('POST', spaces, { body: { name: 'field-notes', description: 'Notes from the field', meta: { team: 'botany' } } });
    expect(created.status).toBe(201);
    const space = created.body;
    expect(space).toEqual({ id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/), name: 'field-notes', description: 'Notes from the field', meta: { team: 'botany' }, org_id: 'acme', created_at: expect.any(String), updated_at: expect.any(String) });
    // Names are unique within the tenant, not across tenants.
    const again = await h.api('POST', spaces, { body: { name: 'field-notes' } });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/field-notes/);
    const theirs = await h.api('POST', spaces, { key: h.keys.globex, body: { name: 'field-notes' } });
    expect(theirs.status).toBe(201);
    const second = await h.api('POST', spaces, { body: { name: 'recipes' } });

    // list (by offset, or the one of a name) and get; another tenant's space is not found.
    const listed = await h.api('GET', `${spaces}?limit=1`);
    expect(listed.body).toEqual({ spaces: [space], total: 2 });
    expect((await h.api('GET', `${spaces}?limit=1&offset=1`)).body.spaces).toEqual([second.body]);
    expect((await h.api('GET', `${spaces}?name=recipes`)).body).toEqual({ spaces: [second.body], total: 1 });
    expect((await h.api('GET', `${spaces}?name=nothing-by-that-name`)).body).toEqual({ spaces: [], total: 0 });
    expect((await h.api('GET', `${spaces}/${space.id}`)).body).toEqual(space);
    expect((await h.api('GET', `${spaces}/${space.id.replaceAll('-', '').toUpperCase()}`)).body).toEqual(space);
    expect((await h.api('GET', `${spaces}/${space.id}`, { key: h.keys.globex })).status).toBe(404);
    const malformed = await h.api('GET', `${spaces}/not-a-uuid`);
    expect([malformed.status, malformed.body.detail[0].loc]).toEqual([422, ['path', 'space_uuid']]);

    // sources.ingest(): a document job a source, all checked before any starts.
    const ingested = await h.api('POST', '/compat/crosmos/api/v1/sources', {
      body: {
        space_id: space.id,
        sources: [
          { content: 'Wild garlic carpets the beech wood by the mill every April.', meta: { plot: 'north' } },
          { content: '# Survey\n\nThe orchid count in the chalk meadow rose to forty-two this year.', content_type: 'markdown', role: 'user', visibility: 'private' },
        ],
      },
    });
    expect(ingested.status).toBe(202);
    expect(ingested.body).toEqual({ job_id: ingested.body.jobs[0].job_id, jobs: [{ job_id: expect.any(String), source_ids: [expect.any(String)] }, { job_id: expect.any(String), source_ids: [expect.any(String)] }], source_ids: ingested.body.jobs.map((job: { source_ids: string[] }) => job.source_ids[0]), status: 'pending' });
    for (const job of ingested.body.jobs) expect((await h.waitForJob('acme', job.job_id)).status).toBe('completed');
    const sources = await h.api('GET', `/compat/crosmos/api/v1/sources?space_id=${space.id}`);
    expect(sources.body.sources.map((source: { id: string }) => source.id).sort()).toEqual([...ingested.body.source_ids].sort());
    expect(sources.body.sources.find((source: { meta: unknown }) => source.meta !== null)).toMatchObject({ content_type: 'document', meta: { plot: 'north' } });
    const found = await h.api('POST', '/compat/crosmos/api/v1/search', { body: { query: 'orchid count chalk meadow', space_id: space.id } });
    expect(found.body.candidates[0].content).toMatch(/orchid/);

    const refusals = [
      { space_id: space.id, sources: [{ content: 'fine' }, { content: '%PDF-1.7', content_type: 'pdf' }] },
      { space_id: space.id, sources: [{ content: 'a call transcript', content_type: 'conversation' }] },
      { space_id: space.id, sources: [] },
      { space_id: 'not-a-space', sources: [{ content: 'fine' }] },
    ];
    const before = (await h.api('GET', `/compat/crosmos/api/v1/sources?space_id=${space.id}`)).body.total;
    for (const body of refusals) expect((await h.api('POST', '/compat/crosmos/api/v1/sources', { body })).status).toBe(422);
    const tooLarge = await h.api('POST', '/compat/crosmos/api/v1/sources', { body: { space_id: space.id, sources: [{ content: 'small' }, { content: 'x'.repeat(5 * 1024 * 1024 + 1) }] } });
    expect(tooLarge.status).toBe(413);
    // Nothing of a refused batch was started, not even its valid first source.
    expect((await h.api('GET', `/compat/crosmos/api/v1/sources?space_id=${space.id}`)).body.total).toBe(before);

    // delete(): the space with everything filed under it, then its name, which is free again.
    expect((await h.api('DELETE', `${spaces}/${space.id}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('DELETE', `${spaces}/${space.id}`)).status).toBe(204);
    expect((await h.api('GET', `${spaces}/${space.id}`)).status).toBe(404);
    expect((await h.api('GET', `/compat/crosmos/api/v1/sources?space_id=${space.id}`)).body.total).toBe(0);
    expect((await searchFor(h, 'orchid chalk meadow')).length).toBe(0);
    expect((await searchFor(h, 'wild garlic beech wood')).length).toBe(0);
    expect((await h.api('DELETE', `${spaces}/${space.id}`)).status).toBe(404);
    expect((await h.api('POST', spaces, { body: { name: 'field-notes' } })).status).toBe(201);
    expect((await h.api('GET', `${spaces}/${theirs.body.id}`, { key: h.keys.globex })).body.name).toBe('field-notes');

    // A space never named but holding data is emptied by its id all the same.
    const unnamed = 'cd5f7a52-1d3c-4c55-9d0e-6f0a2a9b1c09';
    const sent = await h.api('POST', '/compat/crosmos/api/v1/conversations', { body: { space_id: unnamed, messages: [{ role: 'user', content: 'Ottoline breeds Shetland ponies on Unst.' }] } });
    expect((await h.waitForJob('acme', sent.body.job_id)).status).toBe('completed');
    expect((await h.api('GET', `${spaces}/${unnamed}`)).status).toBe(404);
    expect((await h.api('DELETE', `${spaces}/${unnamed}`)).status).toBe(204);
    expect((await searchFor(h, 'Shetland ponies Unst')).length).toBe(0);
  });
});
