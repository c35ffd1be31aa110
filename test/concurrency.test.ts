import { JobListings } from '../lib/job-listing';
import { startHarness, type Harness } from './support/harness';

/** Requests on one thing at the same time, through one API process or two: what users see after. */
describe('requests at the same time', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      // Jobs of 'slow-chat' wait before they read their content, so a later send lands while they run.
      wrapActivities: (activities) => ({
        ...activities,
        fetchSource: async (input) => {
          if (input.request.documentId === 'slow-chat') await new Promise((resolve) => setTimeout(resolve, 1500));
          return activities.fetchSource(input);
        },
        // Jobs sent with metadata {test: 'slow-index'} take their time once indexed, so a cancel lands then.
        indexMemories: async (...args) => {
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
});
