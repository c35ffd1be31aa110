import { startHarness, type Harness } from './support/harness';
import { texCall, texToken } from './support/tex';

/**
 * Tex's SDK's "SuperMemory-compatible" resources under its own base URL (/compat/tex/v3…, /v4…), sent
 * as `tex-sdk` 1.5.2 sends them: documents, search, memories and profile, filed in Tex's containers —
 * its users — so that recall() finds what they write and a token's user reaches only its own.
 */
describe("Tex's documents, memories and search (/compat/tex/v3, /v4)", () => {
  let h: Harness;
  /** Access tokens as Tex(api_key=…, user_id=…) gets them. */
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    h = await startHarness();
    [alice, bob] = await Promise.all([texToken(h, 'alice'), texToken(h, 'bob')]);
  });
  afterAll(async () => h?.close());

  const tex = (method: string, path: string, key: string, body?: unknown) => texCall(h)(method, path, key, body);
  /** What the SDK's recall(q, session_id) sends for a token's user: the scope /auth/verify named. */
  const recall = async (key: string, q: string) => {
    const { tenant } = (await tex('GET', '/auth/verify', key)).body;
    const answer = await tex('POST', '/recall', key, { q, scope: { org_id: tenant.org_id, user_id: tenant.user_id, session_id: 'chat-1' }, mode: 'active', include_timeline: false });
    expect(answer.status).toBe(200);
    return [...answer.body.hits.turns, ...answer.body.hits.observations].map((hit: { text: string }) => hit.text).join('\n');
  };
  const searched = async (key: string, q: string, containerTag?: string) => {
    const answer = await tex('POST', '/v4/search', key, { q, ...(containerTag ? { containerTag } : {}) });
    expect(answer.status).toBe(200);
    return answer.body.results.map((result: { memory: string }) => result.memory).join('\n');
  };

  it("files a token's documents under its user: added, done, found by search and recall, updated, listed and deleted by that user only", async () => {
    const added = await tex('POST', '/v3/documents', alice, { content: 'Alice keeps her passport in the blue drawer of the hallway desk.', customId: 'alice-passport', metadata: { source: 'notes' } });
    expect(added.status).toBe(200);
    // The SDK's AddResponse reads the job as jobId: the document's id is its job's.
    expect(added.body).toEqual({ id: expect.any(String), status: 'queued', jobId: added.body.id });
    expect((await h.waitForJob('acme', added.body.id)).status).toBe('completed');

    const got = await tex('GET', `/v3/documents/${added.body.id}`, alice);
    expect(got.body).toMatchObject({ id: added.body.id, status: 'done', customId: 'alice-passport', containerTags: ['alice'], metadata: { source: 'notes' }, type: 'text' });
    // The SDK sends the container with get and delete: its own is the token's, another user's is refused.
    expect((await h.api('GET', `/compat/tex/v3/documents/${added.body.id}?containerTag=alice`, { key: alice })).status).toBe(200);
    expect((await h.api('GET', `/compat/tex/v3/documents/${added.body.id}?containerTag=bob`, { key: alice })).status).toBe(403);
    expect(await tex('GET', `/v3/documents/${added.body.id}`, bob)).toMatchObject({ status: 404, body: { detail: expect.stringMatching(/not found/) } });
    expect((await tex('GET', `/v3/documents/${added.body.id}`, h.keys.globex!)).status).toBe(404);

    expect(await searched(alice, 'where is the passport kept?')).toMatch(/blue drawer/);
    expect(await searched(bob, 'where is the passport kept?')).not.toMatch(/blue drawer/);
    expect(await recall(alice, 'where is the passport kept?')).toMatch(/blue drawer/);
    expect(await recall(bob, 'where is the passport kept?')).not.toMatch(/blue drawer/);
    // And the other way: what Alice told Tex as a turn is among her container's memories.
    const turn = await tex('POST', '/ingestion/memory', alice, { scope: { org_id: 'acme', user_id: 'alice' }, turns: [{ role: 'user', text: 'My cat is called Miso and she hates the vacuum.' }], options: { write_passive: false } });
    expect(turn.status).toBe(202);
    expect(await searched(alice, 'what is the cat called?')).toMatch(/Miso/);
    expect(await searched(bob, 'what is the cat called?')).not.toMatch(/Miso/);
    // With the key itself, the container named is the user.
    expect(await searched(h.keys.acme!, 'what is the cat called?', 'alice')).toMatch(/Miso/);
    expect(await searched(h.keys.acme!, 'what is the cat called?', 'bob')).not.toMatch(/Miso/);

    const updated = await tex('PATCH', `/v3/documents/${added.body.id}`, alice, { content: 'Alice moved her passport to the safe in the bedroom closet.' });
    expect(updated.body).toEqual({ id: expect.any(String), status: 'queued', jobId: updated.body.id });
    expect((await tex('PATCH', `/v3/documents/${added.body.id}`, bob, { content: 'Bob was here.' })).status).toBe(404);
    expect((await h.waitForJob('acme', updated.body.id)).status).toBe('completed');
    const passport = await searched(alice, 'where is the passport kept?');
    expect(passport).toMatch(/bedroom closet/);
    expect(passport).not.toMatch(/blue drawer/);

    const listed = await tex('POST', '/v3/documents/list', alice, {});
    expect(listed.body.memories).toEqual(expect.arrayContaining([expect.objectContaining({ id: updated.body.id, customId: 'alice-passport', containerTags: ['alice'], status: 'done' })]));
    expect(listed.body.memories.every((document: { containerTags: string[] }) => document.containerTags[0] === 'alice')).toBe(true);
    const bobs = await tex('POST', '/v3/documents/list', bob, {});
    expect(bobs.body.memories.map((document: { id: string }) => document.id)).not.toContain(updated.body.id);
    expect((await tex('POST', '/v3/documents/list', bob, { containerTags: ['alice'] })).status).toBe(403);

    expect((await tex('DELETE', `/v3/documents/${updated.body.id}`, bob)).status).toBe(404);
    expect((await tex('DELETE', '/v3/documents/bulk', bob, { ids: [updated.body.id] })).body).toMatchObject({ deletedCount: 0, success: false });
    expect((await tex('DELETE', `/v3/documents/${updated.body.id}`, alice)).status).toBe(204);
    expect(await searched(alice, 'where is the passport kept?')).not.toMatch(/passport/);
  });

  it('adds memories as documents of their container, then forgets and updates them by id or content', async () => {
    const added = await tex('POST', '/v4/memories', alice, {
      memories: [
        { content: 'Alice drinks oat milk in her coffee.', isStatic: true, metadata: { topic: 'food' } },
        { content: 'Alice is training for the Lisbon marathon in October.' },
      ],
      inactivityTimeoutSeconds: 600,
    });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({
      documentId: null,
      memories: [
        { id: expect.any(String), memory: 'Alice drinks oat milk in her coffee.', isStatic: true, createdAt: expect.any(String), metadata: { topic: 'food', isStatic: true }, storedAs: 'document', documentId: added.body.memories[0].id, jobId: added.body.memories[0].id },
        expect.objectContaining({ memory: 'Alice is training for the Lisbon marathon in October.', isStatic: false, metadata: null, storedAs: 'document' }),
      ],
      message: expect.stringMatching(/as a document of its own/),
      usage: { tokens_in: expect.any(Number), tokens_out: 0 },
    });
    const [milk, marathon] = added.body.memories.map((memory: { id: string }) => memory.id);
    for (const id of [milk, marathon]) expect((await h.waitForJob('acme', id)).status).toBe('completed');
    expect(await recall(alice, 'what milk does she take in coffee?')).toMatch(/oat milk/);
    expect(await searched(bob, 'what milk does she take in coffee?')).not.toMatch(/oat milk/);

    // A memory found by search is edited in place; Tex's SDK reads `version` as a number, so none is sent.
    const found = await tex('POST', '/v4/search', alice, { q: 'oat milk coffee' });
    const memory = found.body.results.find((result: { memory: string }) => result.memory === 'Alice drinks oat milk in her coffee.');
    expect(memory).toBeDefined();
    expect((await tex('PATCH', '/v4/memories', bob, { id: memory.id, newContent: 'Bob was here.' })).status).toBe(404);
    const edited = await tex('PATCH', '/v4/memories', alice, { id: memory.id, newContent: 'Alice drinks almond milk in her coffee.' });
    expect(edited.body).toEqual({ id: memory.id, memory: 'Alice drinks almond milk in her coffee.', createdAt: expect.any(String), parentMemoryId: null, rootMemoryId: null, superseded: true });
    const forgotten = await tex('DELETE', '/v4/memories', alice, { content: 'Alice drinks almond milk in her coffee.' });
    expect(forgotten.body).toEqual({ id: memory.id, forgotten: true, forgottenIds: [memory.id] });

    // The id memories.add answered is the document's: forget and update take it too.
    expect((await tex('DELETE', '/v4/memories', bob, { id: marathon })).status).toBe(404);
    const renewed = await tex('PATCH', '/v4/memories', alice, { id: marathon, newContent: 'Alice is training for the Porto half marathon in November.' });
    expect(renewed.body).toEqual({ id: expect.any(String), memory: 'Alice is training for the Porto half marathon in November.', createdAt: expect.any(String), parentMemoryId: marathon, rootMemoryId: null, superseded: false });
    expect((await h.waitForJob('acme', renewed.body.id)).status).toBe('completed');
    expect(await searched(alice, 'which race is she training for?')).toMatch(/Porto/);
    expect((await tex('DELETE', '/v4/memories', alice, { id: renewed.body.id })).body).toEqual({ id: renewed.body.id, forgotten: true, forgottenIds: [renewed.body.id] });
    expect(await searched(alice, 'which race is she training for?')).not.toMatch(/marathon/);

    const profile = await tex('POST', '/v4/profile', alice, { containerTag: 'alice', q: 'coffee' });
    expect(profile.body).toEqual({ profile: { static: expect.any(Array), dynamic: expect.any(Array) }, searchResults: expect.objectContaining({ results: expect.any(Array) }) });
    expect((await tex('POST', '/v4/profile', bob, { containerTag: 'alice' })).status).toBe(403);
  });

  it("puts what memories.add marked isStatic on profile's static side, whatever extraction typed it, and keeps it off the dynamic side", async () => {
    const nadia = await texToken(h, 'nadia');
    const added = await tex('POST', '/v4/memories', nadia, {
      memories: [
        { content: 'Yesterday Nadia went hiking at Mount Tamalpais and felt completely exhausted afterwards.', isStatic: true },
        { content: 'Last weekend Nadia visited her grandmother in Porto and felt happy.' },
      ],
    });
    // A turn, whose fragment and enrichment say the same words: the profile lists them once.
    const turn = await tex('POST', '/ingestion/memory', nadia, { scope: { org_id: 'acme' }, turns: [{ role: 'user', text: 'Nadia is allergic to shellfish.' }] });
    const [marked, unmarked] = added.body.memories.map((memory: { id: string }) => memory.id);
    for (const id of [marked, unmarked, turn.body.job_id]) expect((await h.waitForJob('acme', id)).status).toBe('completed');
    const memoriesOf = async (jobId: string) => {
      const listed = await h.api('POST', '/v1/memories/list', { body: { filters: { user_id: 'nadia' }, page_size: 100 } });
      return (listed.body.memories as { text: string; type: string; provenance: { job_id: string } }[]).filter((memory) => memory.provenance.job_id === jobId);
    };
    const [markedMemories, unmarkedMemories] = await Promise.all([memoriesOf(marked), memoriesOf(unmarked)]);
    // Extraction types them as what happened, not as facts: without the mark, each would be dynamic.
    expect(markedMemories.some((memory) => !['fact', 'preference'].includes(memory.type))).toBe(true);

    const { profile } = (await tex('POST', '/v4/profile', nadia, { containerTag: 'nadia' })).body;
    for (const memory of markedMemories) {
      expect(profile.static).toContain(memory.text);
      expect(profile.dynamic).not.toContain(memory.text);
    }
    for (const memory of unmarkedMemories.filter((memory) => !['fact', 'preference'].includes(memory.type))) expect(profile.dynamic).toContain(memory.text);
    const said = [...profile.static, ...profile.dynamic].filter((text: string) => text.includes('shellfish'));
    expect(said).toHaveLength(1);
  });

  it("keeps one user's customId apart from another's: each user's document under it is their own, replaced only by their own", async () => {
    const alices = await tex('POST', '/v3/documents', alice, { content: 'Alice locks her bike with the code 4417 at the library.', customId: 'bike-notes' });
    expect((await h.waitForJob('acme', alices.body.id)).status).toBe('completed');
    const bobs = await tex('POST', '/v4/memories', bob, { memories: [{ content: 'Bob leaves his bike unlocked behind the bakery.', customId: 'bike-notes' }] });
    const bobsId = bobs.body.memories[0].id;
    expect((await h.waitForJob('acme', bobsId)).status).toBe('completed');

    expect(await searched(alice, 'where is the bike locked?')).toMatch(/4417/);
    expect(await searched(bob, 'where is the bike left?')).toMatch(/bakery/);
    expect((await tex('POST', '/v3/documents/list', alice, {})).body.memories).toEqual(expect.arrayContaining([expect.objectContaining({ id: alices.body.id, customId: 'bike-notes' })]));

    // Her own customId again is her document's new version, which leaves Bob's as it was.
    const again = await tex('POST', '/v3/documents', alice, { content: 'Alice now locks her bike with the code 9902 at the gym.', customId: 'bike-notes' });
    expect((await h.waitForJob('acme', again.body.id)).status).toBe('completed');
    const hers = await searched(alice, 'where is the bike locked?');
    expect(hers).toMatch(/9902/);
    expect(hers).not.toMatch(/4417/);
    expect(await searched(bob, 'where is the bike left?')).toMatch(/bakery/);
  });

  it("files what the key itself writes under the container it names, else the key's own user; other tenants see none of it", async () => {
    const key = h.keys.acme!;
    const added = await tex('POST', '/v3/documents/batch', key, { documents: ['Carol parks on level 3 of the station garage.'], containerTag: 'carol' });
    expect(added.body).toMatchObject({ success: 1, failed: 0 });
    const id = added.body.results[0].id;
    expect((await h.waitForJob('acme', id)).status).toBe('completed');
    const carol = await texToken(h, 'carol', key);
    expect(await recall(carol, 'where does Carol park?')).toMatch(/level 3/);
    expect((await h.api('GET', `/compat/tex/v3/documents/${id}?containerTag=dave`, { key })).status).toBe(404);
    expect((await tex('GET', `/v3/documents/${id}`, key)).body.containerTags).toEqual(['carol']);

    const own = await tex('POST', '/v3/documents', key, { content: 'The office wifi password rotates every Monday.' });
    const { user_id: keyUser } = (await tex('GET', '/auth/verify', key)).body.tenant;
    expect(keyUser).toMatch(/^key:/);
    expect((await h.waitForJob('acme', own.body.id)).status).toBe('completed');
    expect((await tex('GET', `/v3/documents/${own.body.id}`, key)).body.containerTags).toEqual([keyUser]);

    // Forgetting by content reaches the container named, else the key's own user: never every user's.
    const same = 'Frank and Grace both keep a spare key under the doormat.';
    const [frank, grace] = await Promise.all(['frank', 'grace'].map((user) => tex('POST', '/v3/documents', key, { content: same, containerTag: user })));
    for (const { body } of [frank!, grace!]) expect((await h.waitForJob('acme', body.id)).status).toBe('completed');
    expect((await tex('DELETE', '/v4/memories', key, { content: same })).status).toBe(404);
    expect(await searched(key, 'where is the spare key?', 'frank')).toMatch(/doormat/);
    expect((await tex('DELETE', '/v4/memories', key, { content: same, containerTag: 'frank' })).body.forgottenIds).toHaveLength(1);
    expect(await searched(key, 'where is the spare key?', 'frank')).not.toMatch(/doormat/);
    expect(await searched(key, 'where is the spare key?', 'grace')).toMatch(/doormat/);

    // So does a bulk delete by path: the key's own user's documents under it, or the container's named.
    const filed = await Promise.all(['henry', 'iris'].map((user) => tex('POST', '/v3/documents', key, { content: `${user} keeps the boat papers in the blue folder.`, containerTag: user, filepath: '/boats/papers.md' })));
    for (const { body } of filed) expect((await h.waitForJob('acme', body.id)).status).toBe('completed');
    expect((await tex('DELETE', '/v3/documents/bulk', key, { filepath: '/boats/' })).body).toMatchObject({ deletedCount: 0, success: true });
    expect((await tex('DELETE', '/v3/documents/bulk', key, { filepath: '/boats/', containerTags: ['henry'] })).body).toMatchObject({ deletedCount: 1, success: true });
    expect((await tex('GET', `/v3/documents/${filed[1]!.body.id}`, key)).body.status).toBe('done');
    expect(await searched(key, 'where are the boat papers?', 'iris')).toMatch(/blue folder/);

    const globex = h.keys.globex!;
    expect(await searched(globex, 'where does Carol park?')).not.toMatch(/level 3/);
    expect((await tex('POST', '/v3/documents/list', globex, {})).body.memories).toEqual([]);
    expect((await tex('DELETE', '/v4/memories', globex, { id })).status).toBe(404);
  });

  it('refuses what it cannot do with a 4xx in the shape the SDK reads', async () => {
    const teamScope = await tex('POST', '/v3/documents', alice, { content: 'Shared roadmap notes.', scope: 'team:eng' });
    expect(teamScope.status).toBe(422);
    expect(teamScope.body.detail).toEqual([expect.objectContaining({ loc: ['body', 'scope'], msg: expect.stringMatching(/not supported/) })]);
    expect((await tex('POST', '/v4/memories', alice, { memories: [{ content: 'x' }], scope: 'team:eng' })).status).toBe(422);
    expect((await tex('PATCH', '/v4/memories', alice, { id: 'mem_x', newContent: 'y', scope: 'team:eng' })).status).toBe(422);
    expect((await tex('POST', '/v3/documents', alice, { content: 'Trip notes', documentDate: '2026-05-01' })).body.detail[0].loc).toEqual(['body', 'documentDate']);
    expect((await tex('POST', '/v4/memories', alice, { memories: [] })).status).toBe(422);
    expect((await tex('POST', '/v4/memories', alice, { memories: [{ content: '' }] })).body.detail[0].loc).toEqual(['body', 'memories', 0, 'content']);
    expect((await tex('POST', '/v3/documents', h.keys.acme!, { content: 'Two owners?', containerTags: ['alice', 'bob'] })).status).toBe(422);
    expect((await tex('POST', '/v3/documents', alice, { content: "Bob's notes", containerTag: 'bob' })).status).toBe(403);
    expect((await tex('DELETE', '/v4/memories', alice, {})).status).toBe(422);
    expect((await tex('GET', '/v3/documents/no-such-document', alice)).status).toBe(404);
    expect((await tex('POST', '/v4/search', alice, { q: '' })).status).toBe(422);
    expect((await tex('DELETE', '/v3/documents/bulk', alice, {})).status).toBe(422);
    // Still not served: the SDK's other resources.
    expect((await tex('GET', '/usage/today', alice)).status).toBe(404);
  });
});
