import { startHarness, type Harness } from './support/harness';
import { texCall, texToken } from './support/tex';

/**
 * Tex's SDK's episodes and preferences (`episodes.store`, `episodes.list`, `preferences.store`), sent as
 * `tex-sdk` 1.5.2 sends them: an episode's messages stored as `conversations.remember` stores turns, in
 * the episode's session; preferences stored as `preference` memories of the user.
 */
describe("Tex's episodes and preferences (/compat/tex)", () => {
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
  /** The scope the SDK's _scope_payload() sends for a token's user: no session configured is null. */
  const scopeOf = (user: string) => ({ org_id: 'acme', user_id: user, session_id: null });
  const recalled = async (key: string, user: string, q: string) => {
    const answer = await tex('POST', '/recall', key, { q, scope: { org_id: 'acme', user_id: user }, mode: 'active', include_timeline: false });
    expect(answer.status).toBe(200);
    return answer.body.hits as { turns: { id: string; text: string; timestamp: string }[]; observations: { id: string; text: string }[] };
  };

  it("stores an episode's messages as turns of its session, recallable at once and forgettable by turn id, and lists the user's episodes", async () => {
    // episodes.store("…") without an episode id or session: a new episode.
    const fresh = await tex('POST', '/ingestion/episode', alice, { messages: [{ role: 'user', content: 'We booked the cabin at Lake Tahoe for the second week of August.' }], scope: scopeOf('alice') });
    expect(fresh.status).toBe(202);
    expect(fresh.body).toEqual({
      episode_id: expect.stringMatching(/^ep_[0-9a-f-]{36}$/),
      status: 'stored',
      message: expect.stringContaining('recallable now'),
      job_id: expect.any(String),
      active_fragment_ids: [expect.stringMatching(/^[0-9a-f]{64}$/)],
      turn_ids: fresh.body.active_fragment_ids,
      not_stored_forgotten: [],
      turn_times: [expect.objectContaining({ turn_index: 0, original: null, source: 'arrival', uncertain: true })],
      passive_job_id: fresh.body.job_id,
      usage: { tokens_in: expect.any(Number), tokens_out: 0 },
    });
    expect((await recalled(alice, 'alice', 'where is the cabin?')).turns.map((hit) => hit.id)).toContain(fresh.body.turn_ids[0]);
    const fragment = await h.api('GET', `/v1/memories/mem_${fresh.body.turn_ids[0]}`);
    expect(fragment.body).toMatchObject({ type: 'episode', scope: { org_id: 'acme', user_id: 'alice', session_id: fresh.body.episode_id } });

    // An episode id given, with messages as {role, text} and {role, content}: its session; sent again, a no-op.
    const named = { messages: [{ role: 'user', text: 'My dentist is Dr. Okafor on Elm Street.', timestamp: '2026-03-02T09:00:00Z' }, { role: 'assistant', content: 'Noted.' }], scope: scopeOf('alice'), episode_id: 'health-1' };
    const stored = await tex('POST', '/ingestion/episode', alice, named);
    expect(stored.body).toMatchObject({ episode_id: 'health-1', status: 'stored', turn_ids: [expect.any(String), expect.any(String)] });
    expect((await tex('POST', '/ingestion/episode', alice, named)).body).toMatchObject({ episode_id: 'health-1', turn_ids: stored.body.turn_ids, job_id: stored.body.job_id, usage: { tokens_in: 0 } });
    // Else the scope's session.
    const inSession = await tex('POST', '/ingestion/episode', alice, { messages: [{ role: 'user', content: 'I run on Tuesdays.' }], scope: { ...scopeOf('alice'), session_id: 'chat-9' } });
    expect(inSession.body.episode_id).toBe('chat-9');
    // The same message from Bob is Bob's turn.
    const bobs = await tex('POST', '/ingestion/episode', bob, { messages: [{ role: 'user', content: 'My dentist is Dr. Okafor on Elm Street.', timestamp: '2026-03-02T09:00:00Z' }], scope: scopeOf('bob'), episode_id: 'health-1' });
    expect(bobs.body.turn_ids[0]).not.toBe(stored.body.turn_ids[0]);
    await Promise.all([fresh, stored, inSession, bobs].map((write) => h.waitForJob('acme', write.body.job_id)));

    // conversations.forget() takes an episode's turn ids.
    const forgotten = await tex('DELETE', `/ingestion/memory/turns/${stored.body.turn_ids[0]}`, alice);
    expect(forgotten.body).toMatchObject({ forgotten: true, items_retired: expect.any(Number) });
    expect((await recalled(alice, 'alice', 'who is the dentist?')).turns.map((hit) => hit.id)).not.toContain(stored.body.turn_ids[0]);
    expect((await recalled(bob, 'bob', 'who is the dentist?')).turns.map((hit) => hit.id)).toContain(bobs.body.turn_ids[0]);

    // episodes.list(): the token's user's episodes, most recently written first.
    const listed = await tex('GET', '/memories/episodes?limit=50&offset=0', alice);
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ total: 3, limit: 50, offset: 0 });
    // Most recently written first (an enrichment is a write too).
    const episodes = listed.body.episodes as { episode_id: string; updated_at: string }[];
    expect(episodes.map((episode) => episode.episode_id).sort()).toEqual(['chat-9', fresh.body.episode_id, 'health-1'].sort());
    expect(episodes.map((episode) => episode.updated_at)).toEqual(episodes.map((episode) => episode.updated_at).sort().reverse());
    expect(episodes.find((episode) => episode.episode_id === 'health-1')).toEqual({
      episode_id: 'health-1', org_id: 'acme', user_id: 'alice', session_id: 'health-1',
      // The forgotten turn is no longer the episode's.
      turn_count: 1,
      created_at: expect.any(String), updated_at: expect.any(String), first_turn_at: null, last_turn_at: null,
    });
    expect((await tex('GET', '/memories/episodes?limit=1&offset=1', alice)).body.episodes.map((episode: { episode_id: string }) => episode.episode_id)).toEqual([episodes[1]!.episode_id]);
    // since: the episodes written to at or after it, to the millisecond.
    const cut = episodes[1]!.updated_at;
    const since = await tex('GET', `/memories/episodes?since=${encodeURIComponent(cut)}`, alice);
    expect(since.body.episodes.map((episode: { episode_id: string }) => episode.episode_id)).toEqual(episodes.filter((episode) => episode.updated_at >= cut).map((episode) => episode.episode_id));
    expect(since.body.total).toBe(episodes.filter((episode) => episode.updated_at >= cut).length);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await tex('GET', `/memories/episodes?since=${encodeURIComponent(later)}`, alice)).body).toMatchObject({ episodes: [], total: 0 });
    expect((await tex('GET', '/memories/episodes', bob)).body.episodes).toEqual([expect.objectContaining({ episode_id: 'health-1', user_id: 'bob', turn_count: 1 })]);
    // The key itself sees every user's; another tenant none.
    expect((await tex('GET', '/memories/episodes', h.keys.acme!)).body.total).toBe(4);
    expect((await tex('GET', '/memories/episodes', h.keys.globex!)).body).toMatchObject({ episodes: [], total: 0 });
    expect((await tex('GET', '/memories/episodes?limit=0', alice)).status).toBe(422);
    expect((await tex('GET', '/memories/episodes?since=yesterday', alice)).body.detail[0].loc).toEqual(['query', 'since']);
  });

  it('reads natural-language timestamps in the timezone sent, for an episode and for conversations.remember, and says how in turn_times', async () => {
    const before = Date.now();
    const episode = await tex('POST', '/ingestion/episode', alice, {
      messages: [
        { role: 'user', content: 'The plumber came by.', timestamp: 'yesterday 3pm' },
        { role: 'user', content: 'He fixed the kitchen tap.', timestamp: '2026-05-08T14:00:00+01:00' },
        { role: 'user', content: 'He charged 80 euros.', timestamp: '2026-05-08 16:30' },
      ],
      scope: scopeOf('alice'),
      episode_id: 'house-1',
      timezone: 'Europe/Berlin',
    });
    expect(episode.status).toBe(202);
    const [relative, explicit, wall] = episode.body.turn_times;
    // Yesterday in Berlin, 15:00 there (13:00 or 14:00 UTC, by the season).
    const yesterday = new Date(before - 86_400_000).toLocaleDateString('en-CA', { timeZone: 'Europe/Berlin' });
    expect(relative).toMatchObject({ turn_index: 0, original: 'yesterday 3pm', source: 'relative', uncertain: false });
    expect(new Date(relative.timestamp).toLocaleString('sv-SE', { timeZone: 'Europe/Berlin' })).toBe(`${yesterday} 15:00:00`);
    expect(relative.timestamp_ms).toBe(Date.parse(relative.timestamp));
    expect(explicit).toMatchObject({ original: '2026-05-08T14:00:00+01:00', timestamp: '2026-05-08T13:00:00.000Z', source: 'explicit' });
    // A time without an offset is Berlin's clock (summer time).
    expect(wall).toMatchObject({ timestamp: '2026-05-08T14:30:00.000Z', source: 'explicit' });
    // Stored at the time read, and recalled with it.
    const fragment = await h.api('GET', `/v1/memories/mem_${episode.body.turn_ids[0]}`);
    expect(fragment.body.provenance.timestamp).toBe(relative.timestamp);
    expect((await recalled(alice, 'alice', 'when did the plumber come?')).turns.find((hit) => hit.id === episode.body.turn_ids[0])?.timestamp).toBe(relative.timestamp);

    // conversations.remember(…, timezone=…) reads them the same way (it used to drop the zone).
    const remembered = await tex('POST', '/ingestion/memory', alice, { scope: { org_id: 'acme', user_id: 'alice', session_id: 'house-2' }, turns: [{ role: 'user', text: 'Paid the plumber.', timestamp: '2026-05-09 09:00' }], timezone: '+05:30' });
    expect(remembered.body.turn_times).toEqual([{ turn_index: 0, original: '2026-05-09 09:00', timestamp: '2026-05-09T03:30:00.000Z', timestamp_ms: Date.parse('2026-05-09T03:30:00.000Z'), source: 'explicit', uncertain: false }]);
    expect((await h.api('GET', `/v1/memories/mem_${remembered.body.turn_ids[0]}`)).body.provenance.timestamp).toBe('2026-05-09T03:30:00.000Z');

    const unknownZone = await tex('POST', '/ingestion/episode', alice, { messages: [{ role: 'user', content: 'x', timestamp: 'today 9am' }], scope: scopeOf('alice'), timezone: 'Mars/Olympus' });
    expect(unknownZone.status).toBe(422);
    expect(unknownZone.body.detail[0]).toMatchObject({ loc: ['body', 'timezone'], msg: expect.stringMatching(/not a time zone/) });
    // A timestamp that reads as no date is named where the request holds it: an episode's messages, a write's turns.
    const unreadable = { role: 'user', content: 'x', timestamp: '9999-12-31T23:00:00' };
    const inEpisode = await tex('POST', '/ingestion/episode', alice, { messages: [unreadable], scope: scopeOf('alice'), timezone: '-23:59' });
    expect(inEpisode.body.detail[0]).toMatchObject({ loc: ['body', 'messages', 0, 'timestamp'] });
    const inWrite = await tex('POST', '/ingestion/memory', alice, { scope: { org_id: 'acme', user_id: 'alice', session_id: 'house-3' }, turns: [{ role: 'user', text: 'x', timestamp: unreadable.timestamp }], timezone: '-23:59' });
    expect(inWrite.body.detail[0]).toMatchObject({ loc: ['body', 'turns', 0, 'timestamp'] });
    await Promise.all([episode, remembered].map((write) => h.waitForJob('acme', write.body.job_id)));
  });

  it('refuses what an episode cannot be with a 4xx naming the field', async () => {
    const refused = async (body: unknown) => {
      const answer = await tex('POST', '/ingestion/episode', alice, body);
      expect(answer.status).toBe(422);
      return answer.body.detail[0].loc;
    };
    expect(await refused({ messages: [], scope: scopeOf('alice') })).toEqual(['body', 'messages']);
    expect(await refused({ messages: [{ role: 'user' }], scope: scopeOf('alice') })).toEqual(['body', 'messages', 0, 'content']);
    expect(await refused({ messages: [{ role: 'user', content: 'a', text: 'b' }], scope: scopeOf('alice') })).toEqual(['body', 'messages', 0, 'content']);
    expect(await refused({ messages: [{ role: 'user', content: 'a', timestamp: 'not a date at all' }], scope: scopeOf('alice') })).toEqual(['body', 'messages', 0, 'timestamp']);
    // scope="team:eng": sent as a string with a top-level session_id.
    expect(await refused({ messages: [{ role: 'user', content: 'a' }], scope: 'team:eng', session_id: 's' })).toEqual(['body', 'scope']);
  });

  /** What preferences.store sends for a token's user (its _scope_payload, flat; no session configured is null). */
  const preferencesOf = (user: string, preferences: unknown[]) => ({ org_id: 'acme', user_id: user, session_id: null, preferences });

  it('stores preferences as preference memories of the user: found by recall, search and profile, tracked by jobs.get, restated in place', async () => {
    const stored = await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', [
      { category: 'food', entity: 'Sichuan cuisine', entity_type: 'cuisine', preference_type: 'PREFERS', context: 'when eating out', confidence: 'high', source: 'onboarding', timestamp: '2026-04-01T10:00:00Z' },
      { category: 'travel', entity: 'red-eye flights', entity_type: 'flight', preference_type: 'DISLIKES' },
    ]));
    expect(stored.status).toBe(200);
    expect(stored.body).toEqual({
      job_id: expect.any(String),
      status: 'stored',
      preferences_count: 2,
      memory_ids: [expect.stringMatching(/^mem_[0-9a-f]{64}$/), expect.stringMatching(/^mem_[0-9a-f]{64}$/)],
      org_id: 'acme',
      user_id: 'alice',
      usage: { tokens_in: expect.any(Number), tokens_out: 0 },
    });
    const [sichuan, redEye] = stored.body.memory_ids;
    // Searchable on return.
    const hits = await recalled(alice, 'alice', 'what cuisine does she like?');
    expect(hits.observations.map((hit) => hit.text)).toContain('Prefers Sichuan cuisine (cuisine; food): when eating out');
    const memory = (await h.api('GET', `/v1/memories/${sichuan}`)).body;
    expect(memory).toMatchObject({
      type: 'preference',
      confidence: 0.9,
      entities: [expect.objectContaining({ name: 'Sichuan cuisine' })],
      scope: { org_id: 'acme', user_id: 'alice' },
      provenance: { document_date: '2026-04-01T10:00:00.000Z', surface: 'tex' },
      metadata: { category: 'food', entity_type: 'cuisine', preference_type: 'PREFERS', confidence: 'high', context: 'when eating out', source: 'onboarding' },
    });
    expect((await h.api('GET', `/v1/memories/${redEye}`)).body).toMatchObject({ confidence: 0.7, text: 'Dislikes red-eye flights (flight; travel)' });
    const profile = await tex('POST', '/v4/profile', alice, { containerTag: 'alice' });
    expect(profile.body.profile.static).toEqual(expect.arrayContaining(['Prefers Sichuan cuisine (cuisine; food): when eating out', 'Dislikes red-eye flights (flight; travel)']));
    expect((await tex('POST', '/v4/profile', bob, { containerTag: 'bob' })).body.profile.static).not.toContain('Dislikes red-eye flights (flight; travel)');
    expect((await recalled(bob, 'bob', 'what cuisine does she like?')).observations.map((hit) => hit.text)).not.toContain('Prefers Sichuan cuisine (cuisine; food): when eating out');

    // jobs.get(job_id): Alice's job, not Bob's nor another tenant's.
    const done = await h.waitForJob('acme', stored.body.job_id);
    expect(done).toMatchObject({ status: 'completed', memories_created: 2 });
    expect(await tex('GET', `/ingestion/status/${stored.body.job_id}`, alice)).toMatchObject({ status: 200, body: { job_id: stored.body.job_id, status: 'completed', surface: 'tex' } });
    expect((await tex('GET', `/ingestion/status/${stored.body.job_id}`, bob)).status).toBe(404);
    expect((await tex('GET', `/ingestion/status/${stored.body.job_id}`, h.keys.globex!)).status).toBe(404);

    // Stated again, changed: the same memory, now a dislike, less surely.
    const changed = await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', [{ category: 'food', entity: 'Sichuan cuisine', entity_type: 'cuisine', preference_type: 'DISLIKES', context: 'when eating out', confidence: 'low' }]));
    expect(changed.body.memory_ids).toEqual([sichuan]);
    expect((await h.api('GET', `/v1/memories/${sichuan}`)).body).toMatchObject({ text: 'Dislikes Sichuan cuisine (cuisine; food): when eating out', confidence: 0.4 });
    // Deleted, then stated again: stored again.
    expect((await h.api('DELETE', `/v1/memories/${redEye}`)).status).toBeLessThan(300);
    const restated = await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', [{ category: 'travel', entity: 'red-eye flights', entity_type: 'flight', preference_type: 'DISLIKES' }]));
    expect(restated.body.memory_ids).toEqual([redEye]);
    expect((await h.api('GET', `/v1/memories/${redEye}`)).status).toBe(200);

    // With the key and no user: the key's own user, the one /auth/verify names.
    const own = await tex('POST', '/ingestion/preference', h.keys.acme!, { org_id: '_', user_id: '_', session_id: null, preferences: [{ category: 'drinks', entity: 'oat milk', entity_type: 'ingredient', preference_type: 'PREFERS' }] });
    expect(own.body).toMatchObject({ org_id: 'acme', user_id: (await tex('GET', '/auth/verify', h.keys.acme!)).body.tenant.user_id });
    await Promise.all([changed, restated, own].map((write) => h.waitForJob('acme', write.body.job_id)));
  });

  it('refuses a preference as the SDK\'s validate_preference does: 422 naming the field', async () => {
    const refused = async (preference: unknown, body: Record<string, unknown> = {}) => {
      const answer = await tex('POST', '/ingestion/preference', alice, { ...preferencesOf('alice', [preference]), ...body });
      expect(answer.status).toBe(422);
      return answer.body.detail[0] as { loc: (string | number)[]; msg: string };
    };
    const valid = { category: 'food', entity: 'tea', entity_type: 'drink', preference_type: 'PREFERS' };
    expect(await refused({ ...valid, preference_type: 'LOVES' })).toMatchObject({ loc: ['body', 'preferences', 0, 'preference_type'] });
    expect(await refused({ ...valid, confidence: 0.9 })).toMatchObject({ loc: ['body', 'preferences', 0, 'confidence'], msg: expect.stringMatching(/high, medium, low/) });
    expect(await refused({ ...valid, entity: '  ' })).toMatchObject({ loc: ['body', 'preferences', 0, 'entity'] });
    expect(await refused({ category: 'food', entity: 'tea', preference_type: 'PREFERS' })).toMatchObject({ loc: ['body', 'preferences', 0, 'entity_type'] });
    expect(await refused({ ...valid, strength: 3 })).toMatchObject({ msg: expect.stringMatching(/strength/) });
    expect(await refused({ ...valid, timestamp: 'whenever' })).toMatchObject({ loc: ['body', 'preferences', 0, 'timestamp'] });
    expect(await refused(valid, { scope: 'team:eng' })).toMatchObject({ loc: ['body', 'scope'], msg: expect.stringMatching(/not supported/) });
    expect((await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', []))).status).toBe(422);
    // One call stating one thing two ways would store only the last: refused, naming both.
    const twice = await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', [valid, { ...valid, entity: 'Tea ', preference_type: 'DISLIKES' }]));
    expect(twice.status).toBe(422);
    expect(twice.body.detail[0]).toMatchObject({ loc: ['body', 'preferences', 1], msg: expect.stringMatching(/preferences\.0/) });
    expect((await tex('POST', '/ingestion/preference', alice, preferencesOf('alice', [valid, valid]))).status).toBe(200);
  });
});
