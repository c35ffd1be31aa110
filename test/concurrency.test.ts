import { startHarness, type Harness } from './support/harness';

/** Requests on one thing at the same time, through one API process or two: what users see after. */
describe('requests at the same time', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
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
});
