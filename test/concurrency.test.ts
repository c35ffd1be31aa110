import { EntityWriter, type EntityChange } from '../lib/entities/writer';
import { JobListings } from '../lib/job-listing';
import { startHarness, type Harness } from './support/harness';

/** Resolves once `count` callers wait on it (or after 10 s: a test that then sees no split fails on its own). */
function barrier(count: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  setTimeout(open, 10_000).unref();
  return () => {
    if (++arrived === count) open();
    return opened;
  };
}

/** A promise with its resolve. */
function signal() {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
}

/** Requests on one thing at the same time, through one API process or two: what users see after. */
describe('requests at the same time', () => {
  let h: Harness;
  // Jobs of conversations named in `resolveHooks` run their hook before they resolve entities, those in `indexHooks` before they index.
  const resolveHooks = new Map<string, () => Promise<void>>();
  const indexHooks = new Map<string, () => Promise<void>>();
  const resolvedSignals = new Map<string, () => void>();
  beforeAll(async () => {
    h = await startHarness({
      // Jobs of 'slow-chat' wait before they read their content, so a later send lands while they run.
      wrapActivities: (activities) => ({
        ...activities,
        fetchSource: async (input) => {
          if (input.request.documentId === 'slow-chat') await new Promise((resolve) => setTimeout(resolve, 1500));
          return activities.fetchSource(input);
        },
        resolveEntities: async (...args) => {
          await resolveHooks.get(args[0].request.documentId ?? '')?.();
          const resolved = await activities.resolveEntities(...args);
          resolvedSignals.get(args[0].request.documentId ?? '')?.();
          return resolved;
        },
        // Jobs sent with metadata {test: 'slow-index'} take their time once indexed, so a cancel lands then.
        indexMemories: async (...args) => {
          await indexHooks.get(args[0].request.documentId ?? '')?.();
          const indexed = await activities.indexMemories(...args);
          if (args[0].request.metadata?.test === 'slow-index') await new Promise((resolve) => setTimeout(resolve, 1500));
          return indexed;
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  const memoriesOf = async (filter: Record<string, string>) => {
    await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
    const { hits } = await h.runtime.es.search<{ text: string; provenance: { turn_start: number } }>({
      index: h.runtime.indices.memories,
      query: { bool: { filter: [{ term: { tenant: 'acme' } }, ...Object.entries(filter).map(([field, value]) => ({ term: { [field]: value } }))] } },
      size: 100,
    });
    return hits.hits.map((hit) => hit._source!);
  };

  it('stores each message of a conversation once when its growing sends overlap, through two API processes', async () => {
    const other = await h.anotherApi();
    const lines = ['I adopted a cat named Miso.', 'Clara lives in Berlin.', 'The marathon is in October.', 'Ramen is my favourite food.', 'I started the cello in January.', 'Priya approved the trip to Japan.'];
    const messages = lines.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content }));
    // An agent sends the whole conversation on every turn, faster than each send is taken in.
    const sends = await Promise.all(
      messages.map((_, turn) => (turn % 2 ? other : h.api)('POST', '/v1/conversations', { body: { conversation_id: 'overlap-chat', messages: messages.slice(0, turn + 1) } })),
    );
    // Taken one at a time, in whatever order they came: each stores the messages the last one did not.
    for (const send of sends) if (send.body.job_id) expect((await h.waitForJob('acme', send.body.job_id)).status).toBe('completed');
    const turnsStored = async () => (await memoriesOf({ 'provenance.document_id': 'overlap-chat' })).map((memory) => memory.provenance.turn_start).sort();
    expect(new Set(await turnsStored()).size).toBe((await turnsStored()).length);

    // The whole conversation once more: every message stored, each once.
    const again = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'overlap-chat', messages } });
    if (again.body.job_id) expect((await h.waitForJob('acme', again.body.job_id)).status).toBe('completed');
    expect(await turnsStored()).toEqual([0, 1, 2, 3, 4, 5]);
  });
  it('keeps a new version sent while its source is being deleted: the job writes once the delete is done', async () => {
    const sent = (version: number) => ({ content: `Version ${version}: Greta Holm repaired the Skagen lighthouse lamp.`, document_id: 'skagen-log', scope: { user_id: 'greta' } });
    const first = await h.api('POST', '/v1/documents', { body: sent(1) });
    expect((await h.waitForJob('acme', first.body.job_id)).status).toBe('completed');
    const stored = () => memoriesOf({ 'provenance.source_id': first.body.source_id });

    // The delete finds no open job of the source, and the new version is sent right after: its job
    // would write while the delete removes what the source holds.
    const original = JobListings.prototype.openJobsOf;
    let accepted: Promise<{ status: number; body: { job_id: string } }> | undefined;
    const lookup = jest.spyOn(JobListings.prototype, 'openJobsOf').mockImplementation(async function (this: JobListings, ...args) {
      const open = await original.apply(this, args);
      accepted = h.api('POST', '/v1/documents', { body: sent(2) });
      // Up to 3 s for the new version's memory (written at once when nothing holds it back).
      for (let waited = 0; waited < 3000 && !(await stored()).some((memory) => memory.text.startsWith('Version 2')); waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      return open;
    });
    try {
      expect((await h.api('DELETE', `/v1/sources/${first.body.source_id}`)).status).toBe(200);
    } finally {
      lookup.mockRestore();
    }
    const second = await accepted!;
    expect(second.status).toBe(202);
    expect((await h.waitForJob('acme', second.body.job_id)).status).toBe('completed');
    expect((await stored()).map((memory) => memory.text)).toEqual([expect.stringMatching(/^Version 2/)]);
    expect((await h.api('GET', `/v1/sources/${first.body.source_id}`)).body).toMatchObject({ last_job_id: second.body.job_id, memory_count: 1 });
  });
  it('does not store what an edit sent meanwhile replaced: a message edited while its first job still runs', async () => {
    const messages = [
      { role: 'user', content: 'The last ferry to Vaxholm leaves at ten.' },
      { role: 'assistant', content: 'Noted, ten o\'clock.' },
    ];
    const first = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'slow-chat', messages } });
    const corrected = [messages[0]!, { role: 'assistant', content: 'Correction: the last ferry is cancelled tonight.' }];
    const second = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'slow-chat', messages: corrected } });
    expect(second.body).toMatchObject({ status: 'queued', messages_added: 1 });
    for (const send of [first, second]) expect((await h.waitForJob('acme', send.body.job_id)).status).toBe('completed');
    const stored = await memoriesOf({ 'provenance.document_id': 'slow-chat' });
    expect(stored.map((memory) => memory.text).sort()).toEqual(['assistant: Correction: the last ferry is cancelled tonight.', 'user: The last ferry to Vaxholm leaves at ten.']);
  });
  it('keeps a Tex write sent while its session is being deleted: its fragments are written once the delete is done', async () => {
    const write = (text: string) => h.api('POST', '/compat/tex/ingestion/memory', { body: { scope: { org_id: 'org_del', session_id: 'del-1' }, turns: [{ role: 'user', text }] } });
    const first = await write('The boiler service is booked for Monday.');
    expect(first.status).toBe(202);
    await h.waitForJob('acme', first.body.job_id);
    const session = (await h.api('GET', `/v1/memories/mem_${first.body.active_fragment_ids[0]}`)).body.provenance.source_id;
    const stored = () => memoriesOf({ 'provenance.source_id': session });

    const original = JobListings.prototype.openJobsOf;
    let accepted: Promise<{ status: number; body: { job_id: string; active_fragment_ids: string[] } }> | undefined;
    const lookup = jest.spyOn(JobListings.prototype, 'openJobsOf').mockImplementation(async function (this: JobListings, ...args) {
      const open = await original.apply(this, args);
      accepted = write('The plumber comes on Tuesday instead.');
      for (let waited = 0; waited < 3000 && !(await stored()).some((memory) => memory.text.includes('Tuesday')); waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      return open;
    });
    try {
      expect((await h.api('DELETE', `/v1/sources/${session}`)).status).toBe(200);
    } finally {
      lookup.mockRestore();
    }
    const second = await accepted!;
    expect(second.status).toBe(202);
    expect((await h.waitForJob('acme', second.body.job_id)).status).toBe('completed');
    expect((await h.api('GET', `/v1/memories/mem_${second.body.active_fragment_ids[0]}`)).status).toBe(200);
  });
  it('counts what a job cancelled while its stages run in one go left stored', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Astrid Moe collects vintage radios from Oslo flea markets.', scope: { user_id: 'astrid' }, metadata: { test: 'slow-index' } } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await h.api('POST', `/v1/jobs/${accepted.body.job_id}/cancel`)).status).toBe(202);
    const ended = await h.waitForJob('acme', accepted.body.job_id);
    const stored = await memoriesOf({ 'provenance.job_id': accepted.body.job_id });
    expect(stored.length).toBeGreaterThan(0);
    expect(ended).toMatchObject({ status: 'cancelled', memories_created: stored.length });
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`)).body).toMatchObject({ status: 'cancelled', memories_created: stored.length });
  });

  describe('two jobs that first name one person differently at the same moment', () => {
    const chat = (conversationId: string, name: string, content: string) =>
      h.api('POST', '/v1/conversations', { body: { conversation_id: conversationId, scope: { user_id: conversationId }, messages: [{ role: 'user', name, content }] } });
    const entitiesNamed = async (q: string) => (await h.api('GET', `/v1/entities?q=${encodeURIComponent(q)}&page_size=100`)).body.entities as { id: string; name: string; aliases: string[]; merged_from?: string[]; source_ids: string[]; mention_count: number }[];
    const entityIdsOf = async (conversationId: string) =>
      (await memoriesOf({ 'scope.user_id': conversationId })).flatMap((memory) => (memory as unknown as { entities: { id: string }[] }).entities.map((entity) => entity.id));

    it('end with one entity, the earlier one, that every memory of both names', async () => {
      // Both resolve at once: neither's lookup sees the other's new entity.
      const arrive = barrier(2);
      resolveHooks.set('jp-price', arrive);
      resolveHooks.set('jp-short', arrive);
      const sent = await Promise.all([
        chat('jp-price', 'Jonathan Price', 'I restored a 1962 Vespa over the winter.'),
        chat('jp-short', 'Jonathan', 'My Vespa finally passed its inspection.'),
      ]);
      for (const accepted of sent) expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');

      const [entity, ...others] = await entitiesNamed('Jonathan');
      expect(others).toEqual([]);
      expect(entity!.name).toBe('Jonathan Price');
      expect([...entity!.aliases].sort()).toEqual(['Jonathan', 'Jonathan Price']);
      expect(entity!.merged_from).toHaveLength(1);
      expect(entity!.source_ids.sort()).toEqual(sent.map((accepted) => accepted.body.source_id).sort());
      expect(entity!.mention_count).toBe(2);
      for (const chatId of ['jp-price', 'jp-short']) {
        expect(await entityIdsOf(chatId)).toContain(entity!.id);
        expect(await entityIdsOf(chatId)).not.toContain(entity!.merged_from![0]);
      }
      const found = await h.api('POST', '/v1/search', { body: { query: 'Vespa', mode: 'bm25', filters: { entity_ids: [entity!.id] } } });
      expect(found.body.results).toHaveLength(2);
      expect((await h.api('GET', `/v1/entities/${entity!.merged_from![0]}`)).status).toBe(404);
    });

    it("repoints the memories the later entity's job indexes after the earlier one's job merged it", async () => {
      // "Marguerite" is resolved first (the earlier entity) but written only once "Marguerite Duval" is
      // written and looked around for a split (finding none); that job indexes once the merge is done.
      const earlierHeld = signal();
      const laterResolved = signal();
      const earlierResolved = signal();
      const write = EntityWriter.prototype.write;
      const held = jest.spyOn(EntityWriter.prototype, 'write').mockImplementation(async function (this: EntityWriter, changes: EntityChange[]) {
        if (changes.some((change) => change.doc.name === 'Marguerite' && change.doc.source_ids.length === 1)) {
          earlierHeld.fire();
          await laterResolved.fired;
        }
        return write.call(this, changes);
      });
      resolvedSignals.set('md-full', laterResolved.fire);
      resolvedSignals.set('md-short', earlierResolved.fire);
      indexHooks.set('md-full', () => earlierResolved.fired);
      try {
        const earlier = await chat('md-short', 'Marguerite', 'The bakery on Rue Cler sells out of croissants by nine.');
        await earlierHeld.fired;
        const later = await chat('md-full', 'Marguerite Duval', 'Rue Cler is closed to cars on Sundays.');
        for (const accepted of [earlier, later]) expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
      } finally {
        held.mockRestore();
      }
      const [entity, ...others] = await entitiesNamed('Marguerite');
      expect(others).toEqual([]);
      expect(entity).toMatchObject({ name: 'Marguerite Duval', mention_count: 2 });
      expect(entity!.merged_from).toHaveLength(1);
      for (const chatId of ['md-short', 'md-full']) {
        expect(await entityIdsOf(chatId)).toContain(entity!.id);
        expect(await entityIdsOf(chatId)).not.toContain(entity!.merged_from![0]);
      }
    });
  });
});
