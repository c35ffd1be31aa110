import { upstreamFailure } from '../lib/errors';
import { texToken } from './support/tex';
import { startHarness, type Harness } from './support/harness';

describe('Tex surface (/compat/tex)', () => {
  let h: Harness;
  /** While set, the embedding model (or Elasticsearch) keeps failing Tex's active writes, as a provider that is down does. */
  let modelDown = false;
  beforeAll(async () => {
    h = await startHarness({
      // A fault injected into the active write (not a test double).
      wrapActivities: (activities) => ({
        ...activities,
        writeActiveFragments: async (...args: Parameters<typeof activities.writeActiveFragments>) => {
          if (modelDown) throw upstreamFailure('the embedding model is unavailable (injected)');
          return activities.writeActiveFragments(...args);
        },
        // A write whose metadata says `test: "slow"` is enriched 3 s late, so a request meets its job still running.
        extractMemories: async (...args: Parameters<typeof activities.extractMemories>) => {
          if (args[0].request.metadata?.test === 'slow') await new Promise((resolve) => setTimeout(resolve, 3000));
          return activities.extractMemories(...args);
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  const seed = {
    scope: { org_id: 'org_123', user_id: 'user_9', session_id: 'chat-1' },
    turns: [
      { role: 'user', text: "I'm allergic to shellfish.", timestamp: '2026-05-08T14:00:00Z' },
      { role: 'assistant', text: 'Got it.', timestamp: '2026-05-08T14:00:01Z' },
    ],
    options: { write_active: true, write_passive: true },
    metadata: { channel: 'support' },
  };

  it("returns active fragments that are already searchable, then enriches passively; re-sent turns are no-ops", async () => {
    const response = await h.api('POST', '/compat/tex/ingestion/memory', { body: seed });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({
      job_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      active_fragment_ids: [expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)],
      // Each turn's id (what conversations.forget takes): its fragment's, where it has one.
      turn_ids: response.body.active_fragment_ids,
      not_stored_forgotten: [],
      // How each turn's time was read: these state their zone.
      turn_times: seed.turns.map((turn, i) => ({ turn_index: i, original: turn.timestamp, timestamp: new Date(turn.timestamp).toISOString(), timestamp_ms: Date.parse(turn.timestamp), source: 'explicit', uncertain: false })),
      passive_job_id: response.body.job_id,
      usage: { tokens_in: expect.any(Number), tokens_out: 0 },
    });
    expect(response.body.usage.tokens_in).toBeGreaterThan(0);
    // Recallable by the time the response was sent: no wait.
    const now = await h.api('POST', '/v1/search', { body: { query: 'allergic shellfish', mode: 'bm25', filters: { session_id: 'chat-1' } } });
    expect(now.body.results.map((r: { id: string }) => r.id)).toContain(`mem_${response.body.active_fragment_ids[0]}`);
    const fragment = await h.api('GET', `/v1/memories/mem_${response.body.active_fragment_ids[0]}`);
    expect(fragment.body).toMatchObject({ type: 'episode', scope: { org_id: 'org_123', user_id: 'user_9', session_id: 'chat-1' } });

    const done = await h.waitForJob('acme', response.body.job_id);
    expect(done.status).toBe('completed');
    expect(done.stages.extract.state).toBe('completed');
    // Stored twice (the active fragment and its passive enrichment), found once.
    const once = await h.api('POST', '/v1/search', { body: { query: 'allergic shellfish', mode: 'hybrid', filters: { session_id: 'chat-1' } } });
    expect(once.body.results.filter((r: { text: string }) => r.text.includes('shellfish'))).toHaveLength(1);

    const again = await h.api('POST', '/compat/tex/ingestion/memory', { body: seed });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ job_id: response.body.job_id, active_fragment_ids: response.body.active_fragment_ids, passive_job_id: null, usage: { tokens_in: 0, tokens_out: 0 } });
    // The job the first write started still says what it did: the re-send ran nothing under its id.
    expect((await h.api('GET', `/v1/jobs/${response.body.job_id}`)).body).toMatchObject({ status: 'completed', memories_created: done.memories_created, created_at: done.created_at });

    // One new turn alongside a repeated one: only the new one is billed and written.
    const next = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { ...seed, turns: [seed.turns[0], { role: 'user', text: 'Also no peanuts, please.', timestamp: '2026-05-08T14:01:00Z' }] },
    });
    expect(next.body.active_fragment_ids[0]).toBe(response.body.active_fragment_ids[0]);
    expect(next.body.passive_job_id).not.toBeNull();
    expect(next.body.usage.tokens_in).toBeGreaterThan(0);
    expect(next.body.usage.tokens_in).toBeLessThan(response.body.usage.tokens_in + 20);
    const { count } = await h.runtime.es.count({ index: h.runtime.indices.memories, query: { terms: { _id: [...response.body.active_fragment_ids, ...next.body.active_fragment_ids].map((id: string) => `mem_${id}`) } } });
    expect(count).toBe(3);
    expect((await h.waitForJob('acme', next.body.job_id)).status).toBe('completed');

    // A fragment deleted through the API is not written back when its turn is sent again.
    const peanuts = `mem_${next.body.active_fragment_ids[1]}`;
    expect((await h.api('DELETE', `/v1/memories/${peanuts}`)).status).toBe(204);
    const resent = await h.api('POST', '/compat/tex/ingestion/memory', { body: { ...seed, turns: [seed.turns[0], { role: 'user', text: 'Also no peanuts, please.', timestamp: '2026-05-08T14:01:00Z' }] } });
    expect(resent.body).toMatchObject({ passive_job_id: null, usage: { tokens_in: 0 } });
    expect((await h.api('GET', `/v1/memories/${peanuts}`)).status).toBe(404);

    // Other tenants neither see the fragments nor the job.
    expect((await h.api('GET', `/v1/memories/mem_${response.body.active_fragment_ids[0]}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('GET', `/v1/jobs/${response.body.job_id}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('honours write_active and write_passive', async () => {
    const activeOnly = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope: { org_id: 'org_123' }, turns: [{ role: 'user', text: 'My badge number is 4471.', timestamp: '2026-05-09T09:00:00Z' }], options: { write_passive: false } },
    });
    expect(activeOnly.status).toBe(202);
    expect(activeOnly.body.passive_job_id).toBeNull();
    const done = await h.waitForJob('acme', activeOnly.body.job_id);
    expect(done.status).toBe('completed');
    expect(done.stages.extract.state).toBe('skipped');
    // Its fragment is what it created (it said 0).
    expect(done.memories_created).toBe(1);

    const passiveOnly = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope: { org_id: 'org_123' }, turns: [{ role: 'user', text: 'The quarterly review moved to Thursday.' }], options: { write_active: false } },
    });
    expect(passiveOnly.body.active_fragment_ids).toEqual([]);
    expect(passiveOnly.body.passive_job_id).toBe(passiveOnly.body.job_id);
    expect((await h.waitForJob('acme', passiveOnly.body.job_id)).status).toBe('completed');
    const found = await h.api('POST', '/v1/search', { body: { query: 'quarterly review Thursday', mode: 'bm25' } });
    expect(found.body.results.length).toBeGreaterThan(0);
  });

  it('keeps the same words from two users apart: a turn is identified within its scope', async () => {
    const from = async (userId: string) =>
      (await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'org_123', user_id: userId }, turns: [{ role: 'user', text: 'Yes, book the window seat.' }], options: { write_passive: false } } })).body;
    const first = await from('user_a');
    const second = await from('user_b');
    expect(second.active_fragment_ids[0]).not.toBe(first.active_fragment_ids[0]);
    expect(second.usage.tokens_in).toBeGreaterThan(0);
    for (const [answer, userId] of [[first, 'user_a'], [second, 'user_b']] as const) {
      expect((await h.api('GET', `/v1/memories/mem_${answer.active_fragment_ids[0]}`)).body.scope).toMatchObject({ user_id: userId });
    }
  });

  it('makes a passive-only re-send a no-op, and ingests only the new turns of one that repeats some', async () => {
    const scope = { org_id: 'org_123', user_id: 'user_passive', session_id: 'chat-passive' };
    const repeated = { role: 'user', text: 'The ferry to Madeira leaves from dock seven.', timestamp: '2026-05-10T08:00:00Z' };
    const send = async (turns: object[]) => (await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope, turns, options: { write_active: false } } })).body;
    const mentions = async (word: string) =>
      (await h.runtime.es.count({ index: h.runtime.indices.memories, query: { bool: { filter: [{ term: { 'scope.user_id': 'user_passive' } }, { match: { text: word } }] } } })).count;

    const first = await send([repeated]);
    expect((await h.waitForJob('acme', first.passive_job_id)).status).toBe('completed');
    expect(await mentions('ferry')).toBe(1);

    const again = await send([repeated]);
    expect(again).toMatchObject({ passive_job_id: null, active_fragment_ids: [], usage: { tokens_in: 0, tokens_out: 0 } });

    const next = await send([repeated, { role: 'user', text: 'Bring the blue umbrella for the crossing.', timestamp: '2026-05-10T08:01:00Z' }]);
    expect(next.passive_job_id).not.toBeNull();
    expect((await h.waitForJob('acme', next.passive_job_id)).status).toBe('completed');
    expect(await mentions('umbrella')).toBe(1);
    expect(await mentions('ferry')).toBe(1);
  });

  it("accepts the seed's curl form, with the scope as flat \"scope.*\" keys", async () => {
    const response = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { 'scope.org_id': 'org_flat', 'scope.user_id': 'user_flat', 'scope.session_id': 'chat-flat', turns: [{ role: 'user', text: 'I keep my bike in the basement.', timestamp: '2026-05-10T08:00:00Z' }] },
    });
    expect(response.status).toBe(202);
    const fragment = await h.api('GET', `/v1/memories/mem_${response.body.active_fragment_ids[0]}`);
    expect(fragment.body.scope).toMatchObject({ org_id: 'org_flat', user_id: 'user_flat', session_id: 'chat-flat' });
    expect((await h.waitForJob('acme', response.body.job_id)).status).toBe('completed');
    const missingOrg = await h.api('POST', '/compat/tex/ingestion/memory', { body: { 'scope.user_id': 'u', turns: [{ role: 'user', text: 'x' }] } });
    expect(missingOrg.status).toBe(422);
    expect(missingOrg.body.detail).toEqual([expect.objectContaining({ loc: ['body', 'scope', 'org_id'], type: 'missing' })]);
  });

  it("keeps a turn's observations with its text, searchable, without changing the turn's identity", async () => {
    const turn = { role: 'user', text: 'The delivery came late again.', timestamp: '2026-05-09T10:00:00Z' };
    const body = (observations?: unknown) => ({ scope: { org_id: 'org_obs', session_id: 'obs-1' }, turns: [{ ...turn, observations }] });
    const written = await h.api('POST', '/compat/tex/ingestion/memory', { body: body(['customer sounded frustrated', { sentiment: 'negative' }]) });
    expect(written.status).toBe(202);
    const fragment = await h.api('GET', `/v1/memories/mem_${written.body.active_fragment_ids[0]}`);
    expect(fragment.body.text).toBe('user: The delivery came late again.\n[observation: customer sounded frustrated]\n[observation: {"sentiment":"negative"}]');
    const found = await h.api('POST', '/v1/search', { body: { query: 'frustrated', mode: 'bm25', filters: { session_id: 'obs-1' } } });
    expect(found.body.results.map((r: { id: string }) => r.id)).toContain(`mem_${written.body.active_fragment_ids[0]}`);
    // Role, text and timestamp make the turn: the same turn without observations is the same fragment.
    const again = await h.api('POST', '/compat/tex/ingestion/memory', { body: body() });
    expect(again.body.active_fragment_ids).toEqual(written.body.active_fragment_ids);
    await h.waitForJob('acme', written.body.job_id);
  });

  it('numbers the turns of a session\'s successive writes on from each other', async () => {
    const write = (turns: { role: string; text: string }[]) => h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'org_seq', session_id: 'seq-1' }, turns } });
    const first = await write([{ role: 'user', text: 'We moved the standup to ten.' }, { role: 'assistant', text: 'Noted, ten it is.' }]);
    const second = await write([{ role: 'assistant', text: 'Noted, ten it is.' }, { role: 'user', text: 'And the retro to Friday.' }]);
    const positionOf = async (fragment: string) => (await h.api('GET', `/v1/memories/mem_${fragment}`)).body.provenance.turn_start;
    expect(await Promise.all(first.body.active_fragment_ids.map(positionOf))).toEqual([0, 1]);
    // The repeated turn keeps its place; the new one comes after the session's last.
    expect(await Promise.all(second.body.active_fragment_ids.map(positionOf))).toEqual([1, 2]);
    await h.waitForJob('acme', second.body.job_id);

    // Its source deleted (once both writes' passive jobs have ended: a delete refuses while one runs),
    // the session is new: written again, it is numbered from 0.
    await h.waitForJob('acme', first.body.job_id);
    const sourceId = (await h.api('GET', `/v1/memories/mem_${first.body.active_fragment_ids[0]}`)).body.provenance.source_id;
    expect((await h.api('DELETE', `/v1/sources/${sourceId}`)).status).toBe(200);
    const afresh = await write([{ role: 'user', text: 'The standup is back at nine.' }]);
    expect(await Promise.all(afresh.body.active_fragment_ids.map(positionOf))).toEqual([0]);
    await h.waitForJob('acme', afresh.body.job_id);
  });

  it('numbers the new turns of two writes to one session at once apart', async () => {
    const write = (turns: { role: string; text: string }[]) => h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'org_race', session_id: 'race-1' }, turns } });
    const [a, b] = await Promise.all([
      write([{ role: 'user', text: 'The boiler needs a service.' }, { role: 'assistant', text: 'I will book one.' }]),
      write([{ role: 'user', text: 'Also the gutters are full.' }, { role: 'assistant', text: 'Cleaning them too.' }]),
    ]);
    const positionOf = async (fragment: string) => (await h.api('GET', `/v1/memories/mem_${fragment}`)).body.provenance.turn_start;
    const numbered = [...(await Promise.all(a.body.active_fragment_ids.map(positionOf))), ...(await Promise.all(b.body.active_fragment_ids.map(positionOf)))];
    expect([...numbered].sort()).toEqual([0, 1, 2, 3]);
    await Promise.all([h.waitForJob('acme', a.body.job_id), h.waitForJob('acme', b.body.job_id)]);
  });

  it('numbers the new turns of writes to one session through two API processes apart, and after a restart', async () => {
    // Each API has its own in-process state, as a second replica or a restarted process does.
    const [one, two] = [await h.anotherApi(), await h.anotherApi()];
    const write = (api: Harness['api'], n: number, options?: object) =>
      api('POST', '/compat/tex/ingestion/memory', {
        body: {
          scope: { org_id: 'org_replicas', session_id: 'replicas-1' },
          turns: [{ role: 'user', text: `Replica note ${n}: the van is parked on level ${n}.` }, { role: 'assistant', text: `Level ${n}, noted.` }],
          ...(options ? { options } : {}),
        },
      });
    const written = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => write(n % 2 ? one : two, n)));
    expect(written.map((response) => response.status)).toEqual(Array(6).fill(202));
    const positionOf = async (fragment: string) => (await h.api('GET', `/v1/memories/mem_${fragment}`)).body.provenance.turn_start;
    const numbered = await Promise.all(written.flatMap((response) => response.body.active_fragment_ids.map(positionOf)));
    expect([...numbered].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // A passive-only write takes 12 and 13, which nothing shows until its enrichment is indexed; a third
    // API (a restart) writing at once numbers on after it.
    const passive = await write(one, 7, { write_active: false, write_passive: true });
    expect(passive.status).toBe(202);
    const later = await write(await h.anotherApi(), 8);
    expect(await Promise.all(later.body.active_fragment_ids.map(positionOf))).toEqual([14, 15]);
    await Promise.all([...written, passive, later].map((response) => h.waitForJob('acme', response.body.job_id)));
  });

  it('answers once the active fragments are written, before the passive enrichment runs', async () => {
    // One short turn: its passive stages are small enough to run as local activities, inside a
    // workflow task. The answer must not wait for them.
    const response = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope: { org_id: 'org_fast', session_id: 'fast-1' }, turns: [{ role: 'user', text: 'My train leaves at 7:40 from Oriente.' }] },
    });
    expect(response.status).toBe(202);
    expect((await h.waitForJob('acme', response.body.job_id)).status).toBe('completed');
    const events = (await h.jobs.handle('acme', response.body.job_id).fetchHistory()).events ?? [];
    // The answer leaves with the completion of the workflow task that completed the update: that task
    // must have run no passive stage (a local stage's marker lands with the task it ran in).
    const answered = events.findIndex((event) => event.workflowExecutionUpdateCompletedEventAttributes);
    const firstPassiveStage = events.findIndex((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    expect(answered).toBeGreaterThan(0);
    expect(events.slice(answered, firstPassiveStage).some((event) => event.workflowTaskStartedEventAttributes)).toBe(true);
    // That task ended by scheduling the passive hand-over (its events and the answer's are of the one
    // task's completion), not with a timer: the server fires a timer no sooner than a second after it
    // is set.
    expect(events.some((event) => event.timerStartedEventAttributes)).toBe(false);
    const handOver = events.findIndex((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'fetchSource');
    expect(handOver).toBeGreaterThan(0);
    expect(handOver).toBeLessThan(firstPassiveStage);
    const between = events.slice(Math.min(handOver, answered), Math.max(handOver, answered));
    expect(between.some((event) => event.workflowTaskStartedEventAttributes)).toBe(false);
  });

  it("makes the active fragments searchable itself, without waiting for the index's scheduled refresh", async () => {
    // With scheduled refreshes off, a write that waited for the next one (refresh=wait_for) would never
    // be answered; the active write refreshes the index itself.
    const index = h.runtime.indices.memories;
    await h.runtime.es.indices.putSettings({ index, settings: { index: { refresh_interval: '-1' } } });
    try {
      const response = await h.api('POST', '/compat/tex/ingestion/memory', {
        body: { scope: { org_id: 'org_refresh', session_id: 'refresh-1' }, turns: [{ role: 'user', text: 'The spare key is under the blue flowerpot.' }], options: { write_passive: false } },
      });
      expect(response.status).toBe(202);
      const found = await h.api('POST', '/v1/search', { body: { query: 'spare key flowerpot', mode: 'bm25', filters: { session_id: 'refresh-1' } } });
      expect(found.body.results.map((r: { id: string }) => r.id)).toEqual([`mem_${response.body.active_fragment_ids[0]}`]);
    } finally {
      await h.runtime.es.indices.putSettings({ index, settings: { index: { refresh_interval: '1s' } } });
    }
  });

  it('answers a write its model or store keeps failing with a 503 to retry, saying why (it was a 500); the retry is the one job listed', async () => {
    const write = { ...seed, scope: { org_id: 'org_down', user_id: 'u1', session_id: 's1' } };
    modelDown = true;
    let failing;
    try {
      failing = await h.api('POST', '/compat/tex/ingestion/memory', { body: write });
    } finally {
      modelDown = false;
    }
    expect(failing.status).toBe(503);
    expect(failing.body.detail).toMatch(/the active write failed: the embedding model is unavailable \(injected\)/);
    const retried = await h.api('POST', '/compat/tex/ingestion/memory', { body: write });
    expect(retried.status).toBe(202);
    await h.waitForJob('acme', retried.body.job_id);
    // The failed run and the retry share the job id: the listing shows the job once, as it is now.
    const listed = (await h.api('GET', '/v1/jobs?surface=tex&page_size=100')).body.jobs.filter((job: { job_id: string }) => job.job_id === retried.body.job_id);
    expect(listed).toEqual([expect.objectContaining({ status: 'completed' })]);
    const failed = (await h.api('GET', '/v1/jobs?status=failed&page_size=100')).body.jobs.map((job: { job_id: string }) => job.job_id);
    expect(failed).not.toContain(retried.body.job_id);
  }, 60_000);

  it('answers validation errors as 422 {detail}', async () => {
    const bad = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: '' }, turns: [] } });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc: ['body', 'scope', 'org_id'] }), expect.objectContaining({ loc: ['body', 'turns'] })]));
  });
  it("signs in as Tex's SDK does: an API key exchanged for a token whose user and session the writes default to", async () => {
    // Tex(api_key=…, user_id=…): POST /auth/token-exchange with no Authorization header.
    const exchanged = await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'user_77', session_id: 'chat-sdk' } });
    expect(exchanged.status).toBe(200);
    expect(exchanged.body.token_type).toBe('bearer');
    const token = exchanged.body.access_token as string;
    // JWT-shaped, so the SDK reads its claims.
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())).toEqual({ org_id: 'acme', user_id: 'user_77', session_id: 'chat-sdk' });
    const verified = await h.api('GET', '/compat/tex/auth/verify', { key: token });
    expect(verified.body).toEqual({ valid: true, tenant: { org_id: 'acme', user_id: 'user_77', session_id: 'chat-sdk' } });
    // Without a user, the token acts as the key's own identity, as Tex's synthetic user.
    const own = await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme } });
    const ownTenant = (await h.api('GET', '/compat/tex/auth/verify', { key: own.body.access_token })).body.tenant;
    expect(ownTenant).toEqual({ org_id: 'acme', user_id: expect.stringMatching(/^key:/) });
    expect((await h.api('GET', '/compat/tex/auth/verify')).body.tenant).toEqual(ownTenant);

    // A write with the token and no user or session in its scope takes the token's.
    const write = await h.api('POST', '/compat/tex/ingestion/memory', {
      key: token,
      body: { scope: { org_id: 'acme' }, turns: [{ role: 'user', text: 'My badge number is 4471.', timestamp: '2026-05-09T09:00:00Z' }] },
    });
    expect(write.status).toBe(202);
    const fragment = await h.api('GET', `/v1/memories/mem_${write.body.active_fragment_ids[0]}`);
    expect(fragment.body.scope).toMatchObject({ org_id: 'acme', user_id: 'user_77', session_id: 'chat-sdk' });
    await h.waitForJob('acme', write.body.job_id);
    // The token is worth its key, in its tenant only.
    expect((await h.api('GET', `/v1/memories/mem_${write.body.active_fragment_ids[0]}`, { key: h.keys.globex })).status).toBe(404);

    const wrongKey = await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: 'cairn_not_a_key' } });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.body).toEqual({ detail: 'Invalid API key' });
    expect((await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: {} })).status).toBe(422);
    const forged = `${token.split('.').slice(0, 2).join('.')}.${Buffer.from('cairn_not_a_key').toString('base64url')}`;
    expect((await h.api('POST', '/compat/tex/ingestion/memory', { key: forged, body: seed })).status).toBe(401);
    // Claims rewritten to name another org: the key's tenant is still who the token acts for.
    const [header, , key] = token.split('.');
    const reclaimed = `${header}.${Buffer.from(JSON.stringify({ org_id: 'globex', user_id: 'bob' })).toString('base64url')}.${key}`;
    expect((await h.api('GET', '/compat/tex/auth/verify', { key: reclaimed })).body.tenant).toEqual({ org_id: 'acme', user_id: 'bob' });
    // A body that is no JSON is answered in Tex's shape, as every other error of this surface.
    const garbled = await fetch(`${h.baseUrl}/compat/tex/auth/token-exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"api_key":' });
    expect([garbled.status, await garbled.json()]).toEqual([422, { detail: [{ loc: ['body'], msg: 'Request body is not valid JSON', type: 'value_error' }] }]);
    // The SDK's hierarchical scope id has no place in Cairn's scope: a 422 that says so.
    const ladder = await h.api('POST', '/compat/tex/ingestion/memory', { key: token, body: { ...seed, scope: 'team:eng', session_id: 'chat-1' } });
    expect(ladder.status).toBe(422);
    expect(ladder.body.detail[0]).toMatchObject({ loc: ['body', 'scope'], msg: expect.stringMatching(/"team:eng" is not supported/) });
  });

  it('holds a token minted for a user to that user on every route that names one (403); the key and the org-admin token name any user', async () => {
    const tokenFor = async (user?: string) => (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, ...(user ? { user_id: user } : {}) } })).body.access_token as string;
    const [uma, orgAdmin] = await Promise.all([tokenFor('uma'), tokenFor()]);
    // What the routes that name a user send, naming `user`, and what they answer when it is the caller's to name.
    const calls = (user: string): [string, unknown, number][] => [
      ['/ingestion/memory', { scope: { org_id: 'acme', user_id: user, session_id: 'own-1' }, turns: [{ role: 'user', text: `${user} parks on level 3.` }], options: { write_passive: false } }, 202],
      ['/ingestion/episode', { messages: [{ role: 'user', content: `${user} likes the window seat.` }], scope: { org_id: 'acme', user_id: user, session_id: null }, episode_id: 'own-2', options: { write_passive: false } }, 202],
      ['/ingestion/preference', { org_id: 'acme', user_id: user, session_id: null, preferences: [{ category: 'drinks', entity: 'green tea', entity_type: 'beverage', preference_type: 'PREFERS' }] }, 200],
      ['/recall', { q: 'where does she park?', scope: { org_id: 'acme', user_id: user }, mode: 'active', include_timeline: false }, 200],
      ['/v3/documents', { content: `${user}'s gym locker is number 12.`, containerTag: user }, 200],
    ];
    const deletion = (user: string): [string, unknown, number] => ['/me/deletions', { target: { kind: 'user_scope', value: user }, mode: 'soft' }, 200];
    for (const [path, body] of [...calls('vic'), deletion('vic')]) {
      const refused = await h.api('POST', `/compat/tex${path}`, { key: uma, body });
      expect([path, refused.status, refused.body.detail]).toEqual([path, 403, expect.stringMatching(/^this access token acts for user uma only: .* names user vic/)]);
    }
    expect((await h.api('POST', '/v1/memories/list', { body: { filters: { user_id: 'vic' } } })).body.memories).toEqual([]);
    for (const [key, user] of [[uma, 'uma'], [orgAdmin, 'vic'], [h.keys.acme!, 'vic']] as const) {
      for (const [path, body, status] of calls(user)) expect([path, (await h.api('POST', `/compat/tex${path}`, { key, body })).status]).toEqual([path, status]);
    }
    // What names no user: a user's token reads its user's, the org-admin token every user's, as the key does.
    const episodesOf = async (key: string) => ((await h.api('GET', '/compat/tex/memories/episodes', { key })).body.episodes as { user_id: string; episode_id: string }[]).filter((episode) => episode.episode_id === 'own-2').map((episode) => episode.user_id).sort();
    expect(await episodesOf(uma)).toEqual(['uma']);
    expect(await episodesOf(orgAdmin)).toEqual(['uma', 'vic']);
    expect(await episodesOf(h.keys.acme!)).toEqual(['uma', 'vic']);
  });

  it("recalls as Tex's SDK recall() asks: the user's turns from every session, with their fragment ids, scores and times, and no one else's", async () => {
    const write = async (scope: Record<string, string>, text: string, timestamp: string) => {
      const answer = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope, turns: [{ role: 'user', text, timestamp }] } });
      expect(answer.status).toBe(202);
      await h.waitForJob('acme', answer.body.job_id);
      return answer.body.active_fragment_ids[0] as string;
    };
    const mine = await write({ org_id: 'org_r', user_id: 'rosa', session_id: 's-1' }, 'I keep my passport in the red folder.', '2026-06-01T08:00:00Z');
    await write({ org_id: 'org_r', user_id: 'rosa', session_id: 's-2' }, 'My flight to Lima leaves on Friday.', '2026-06-02T08:00:00Z');
    await write({ org_id: 'org_r', user_id: 'tomas', session_id: 's-1' }, 'I keep my passport in the green drawer.', '2026-06-01T09:00:00Z');

    // The body the SDK sends: its tenant scope (with this session), the mode and include_timeline, top_k when given.
    const recall = (body: Record<string, unknown>, key?: string) =>
      h.api('POST', '/compat/tex/recall', { key, body: { q: 'where is my passport?', scope: { org_id: 'org_r', user_id: 'rosa', session_id: 's-2' }, mode: 'active', include_timeline: false, ...body } });
    const recalled = await recall({ top_k: 5 });
    expect(recalled.status).toBe(200);
    expect(recalled.body).toMatchObject({ timeline: null, mode: 'active', probable_answer: null, probable_answer_reason: 'not_enabled', usage: { tokens_in: expect.any(Number), tokens_out: 0 } });
    const turns = recalled.body.hits.turns;
    // Found from another session of the same user, under the id the write answered with.
    expect(turns[0]).toMatchObject({ id: mine, text: expect.stringMatching(/red folder/), kind: 'turn', timestamp: '2026-06-01T08:00:00.000Z', timestamp_ms: Date.parse('2026-06-01T08:00:00Z'), time_uncertain: false });
    expect(turns[0].score).toBeGreaterThan(0);
    expect(recalled.body.confidence).toBe(turns[0].score);
    const texts = [...turns, ...recalled.body.hits.observations].map((hit: { text: string }) => hit.text).join(' ');
    expect(texts).not.toMatch(/green drawer/);
    // min_score drops the hits below it.
    const strict = await recall({ min_score: turns[0].score });
    expect(strict.body.hits.turns.every((hit: { score: number }) => hit.score >= turns[0].score)).toBe(true);
    expect((await recall({}, h.keys.globex)).body.hits.turns).toEqual([]);
    const ladder = await recall({ scope: 'team:eng', session_id: 's-2' });
    expect(ladder.status).toBe(422);
  });

  it("tracks a write's job as Tex's SDK jobs.get() asks (GET /ingestion/status/{job_id}), confined to the caller's Tex writes", async () => {
    const token = (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'user_jobs' } })).body.access_token as string;
    const write = await h.api('POST', '/compat/tex/ingestion/memory', {
      key: token,
      body: { scope: { org_id: 'acme', session_id: 'chat-jobs' }, turns: [{ role: 'user', text: 'My locker is number 212.', timestamp: '2026-06-03T08:00:00Z' }] },
    });
    expect(write.status).toBe(202);
    const status = await h.api('GET', `/compat/tex/ingestion/status/${write.body.job_id}`, { key: token });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ job_id: write.body.job_id, status: expect.stringMatching(/^(queued|running|completed)$/), surface: 'tex', scope: { user_id: 'user_jobs', session_id: 'chat-jobs' } });
    await h.waitForJob('acme', write.body.job_id);
    const done = await h.api('GET', `/compat/tex/ingestion/status/${write.body.passive_job_id}`, { key: token });
    expect(done.body).toMatchObject({ status: 'completed', memories_created: expect.any(Number), stages: { extract: { state: 'completed' } } });
    // With the key itself, any Tex job of the tenant.
    expect((await h.api('GET', `/compat/tex/ingestion/status/${write.body.job_id}`)).status).toBe(200);

    // Another user's token, another tenant, a job another surface started, an unknown id: Tex's 404.
    const other = (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'someone_else' } })).body.access_token as string;
    expect((await h.api('GET', `/compat/tex/ingestion/status/${write.body.job_id}`, { key: other })).status).toBe(404);
    const foreign = await h.api('GET', `/compat/tex/ingestion/status/${write.body.job_id}`, { key: h.keys.globex });
    expect([foreign.status, foreign.body]).toEqual([404, { detail: expect.stringMatching(/not found/i) }]);
    const native = await h.api('POST', '/v1/documents', { body: { content: 'A native note about lockers.', format: 'TXT' } });
    expect((await h.api('GET', `/compat/tex/ingestion/status/${native.body.job_id}`)).status).toBe(404);
    // An id that is no job id: 422 in FastAPI's shape, naming the path parameter.
    const bad = await h.api('GET', '/compat/tex/ingestion/status/not.a.job');
    expect(bad.status).toBe(422);
    expect(bad.body.detail[0]).toMatchObject({ loc: ['path', 'job_id'] });
  });

  it("forgets one turn in both tiers as Tex's SDK conversations.forget() asks, and does not store it again when it is sent again", async () => {
    const scope = { org_id: 'org_f', user_id: 'user_forget', session_id: 'chat-forget' };
    const turns = [
      { role: 'user', text: 'My pharmacist is called Ingrid Solberg.', timestamp: '2026-06-04T08:00:00Z' },
      { role: 'user', text: 'I water the ficus every Sunday.', timestamp: '2026-06-04T08:01:00Z' },
    ];
    const write = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope, turns, metadata: { test: 'slow' } } });
    expect(write.status).toBe(202);
    // RememberResponse.turn_ids: one per turn, in order, the ids the turns' memories carry.
    expect(write.body.turn_ids).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(write.body.not_stored_forgotten).toEqual([]);
    const [pharmacist, ficus] = write.body.turn_ids as string[];
    expect((await h.api('GET', `/v1/memories/mem_${pharmacist}`)).body.provenance.turn_ids).toEqual([pharmacist]);

    // While its enrichment runs, forgetting it would be undone by the enrichment: a 409 to repeat later.
    const early = await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${pharmacist}`);
    expect(early.status).toBe(409);
    expect(early.body.detail).toMatch(/still being enriched/);
    await h.waitForJob('acme', write.body.job_id);
    const named = async () =>
      (await h.api('POST', '/v1/memories/list', { body: { filters: { session_id: 'chat-forget' }, page_size: 100 } })).body.memories.filter((memory: { provenance: { turn_ids?: string[] } }) =>
        memory.provenance.turn_ids?.includes(pharmacist),
      );
    const before = await named();
    expect(before.length).toBeGreaterThanOrEqual(2);

    // Another tenant, another user's token: not theirs to forget.
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${pharmacist}`, { key: h.keys.globex })).status).toBe(404);
    const stranger = (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'someone_else' } })).body.access_token as string;
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${pharmacist}`, { key: stranger })).status).toBe(404);

    const owner = (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'user_forget' } })).body.access_token as string;
    const forgot = await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${pharmacist}?reason=user%20asked`, { key: owner });
    expect(forgot.status).toBe(200);
    expect(forgot.body).toMatchObject({ turn_id: pharmacist, forgotten: true, durable_tier: 'ok', active_tier: 'ok', active_tier_note: null, items_retired: before.length, residue: [], errors: [] });
    // Gone from both tiers: no memory names it, search and recall do not find it; the other turn stays.
    expect(await named()).toEqual([]);
    expect((await h.api('GET', `/v1/memories/mem_${pharmacist}`)).status).toBe(404);
    const recalled = await h.api('POST', '/compat/tex/recall', { body: { q: 'who is my pharmacist?', scope, mode: 'active', include_timeline: false } });
    expect(JSON.stringify(recalled.body.hits)).not.toMatch(/Ingrid/);
    expect((await h.api('GET', `/v1/memories/mem_${ficus}`)).status).toBe(200);

    // Sent again, the forgotten turn is not stored (and said so); forgetting it again is a no-op.
    const again = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope, turns } });
    expect(again.body).toMatchObject({ turn_ids: [pharmacist, ficus], not_stored_forgotten: [pharmacist], passive_job_id: null });
    expect(await named()).toEqual([]);
    // The forgotten turn alone, sent again: not stored, so not answered as a fragment written either.
    const alone = await h.api('POST', '/compat/tex/ingestion/memory', { body: { scope, turns: [turns[0]] } });
    expect(alone.body).toMatchObject({ turn_ids: [pharmacist], active_fragment_ids: [], not_stored_forgotten: [pharmacist] });
    const repeat = await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${pharmacist}`);
    expect(repeat.body).toMatchObject({ forgotten: true, items_retired: 0 });

    // A turn written by the passive tier alone has no fragment: its enrichment goes, and it stays out too.
    const passive = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope, turns: [{ role: 'user', text: 'My spare key is under the blue pot.', timestamp: '2026-06-04T09:00:00Z' }], options: { write_active: false } },
    });
    await h.waitForJob('acme', passive.body.job_id);
    const [spare] = passive.body.turn_ids as string[];
    const dropped = await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${spare}`);
    expect(dropped.body).toMatchObject({ forgotten: true, items_retired: expect.any(Number), active_tier_note: expect.stringMatching(/no active fragment/) });
    expect(dropped.body.items_retired).toBeGreaterThan(0);
    const resent = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope, turns: [{ role: 'user', text: 'My spare key is under the blue pot.', timestamp: '2026-06-04T09:00:00Z' }], options: { write_active: false } },
    });
    expect(resent.body).toMatchObject({ not_stored_forgotten: [spare], passive_job_id: null });
    expect((await h.api('POST', '/v1/search', { body: { query: 'spare key blue pot', mode: 'bm25', filters: { session_id: 'chat-forget' } } })).body.results).toEqual([]);

    // Unknown and malformed ids.
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${'0'.repeat(64)}`)).status).toBe(404);
    const malformed = await h.api('DELETE', '/compat/tex/ingestion/memory/turns/mem_abc');
    expect(malformed.status).toBe(422);
    expect(malformed.body.detail[0]).toMatchObject({ loc: ['path', 'turn_id'], msg: expect.stringMatching(/turn_ids/) });
  });

  it("keeps another user's same turn when one user forgets theirs: a turn and its tombstone are the user's", async () => {
    const turn = { role: 'user', text: 'My locker code is 4711.', timestamp: '2026-06-05T10:00:00Z' };
    const send = (userId: string) =>
      h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'org_shared', user_id: userId, session_id: 'standup' }, turns: [turn], options: { write_passive: false } } });
    const [mine, theirs] = [(await send('user_one')).body, (await send('user_two')).body];
    expect(theirs.turn_ids[0]).not.toBe(mine.turn_ids[0]);
    const one = (await h.api('POST', '/compat/tex/auth/token-exchange', { key: '', body: { api_key: h.keys.acme, user_id: 'user_one' } })).body.access_token as string;
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${mine.turn_ids[0]}`, { key: one })).body).toMatchObject({ forgotten: true, items_retired: 1 });

    // The other user's turn stays, and sent again is still theirs to store; the first user's stays out.
    expect((await h.api('GET', `/v1/memories/mem_${theirs.turn_ids[0]}`)).status).toBe(200);
    expect((await send('user_two')).body).toMatchObject({ turn_ids: theirs.turn_ids, not_stored_forgotten: [] });
    expect((await send('user_one')).body).toMatchObject({ turn_ids: mine.turn_ids, not_stored_forgotten: mine.turn_ids });
    // Nor can the first user's token forget the other's.
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${theirs.turn_ids[0]}`, { key: one })).status).toBe(404);
    expect((await h.api('GET', `/v1/memories/mem_${theirs.turn_ids[0]}`)).status).toBe(200);
    // Nor learn, by forgetting it, that the first user's forgotten turn exists: the tombstone is its user's.
    const two = await texToken(h, 'user_two');
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${mine.turn_ids[0]}`, { key: two })).status).toBe(404);
    expect((await h.api('DELETE', `/compat/tex/ingestion/memory/turns/${mine.turn_ids[0]}`, { key: one })).body).toMatchObject({ forgotten: true, items_retired: 0 });
  });
});
