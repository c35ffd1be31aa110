import { holdActivity } from './support/faults';
import { startHarness, type Harness } from './support/harness';
import { waitFor, within } from './support/wait';

/**
 * A Tex write's caller waits for its active fragments; the activity that writes them runs on the queue
 * of waited-on activities, so a backlog of stages on the job queue (here every activity slot held by
 * a large document's extraction) does not hold the answer back.
 */
describe('Tex writes behind a backlog of ingest stages', () => {
  let h: Harness;
  const extractions = holdActivity('extractMemories');

  beforeAll(async () => {
    // One chunk per batch, sixteen batches at once: one document fills the job queue's 16 slots.
    h = await startHarness({ env: { BATCH_SIZE: '1', BATCH_CONCURRENCY: '16', CHUNK_TOKENS: '40', CHUNK_OVERLAP_TOKENS: '0' }, wrapActivities: extractions.wrap });
  });
  afterAll(async () => {
    extractions.release();
    await h?.close();
  });

  it('answers with searchable fragments while every slot of the job queue is busy', async () => {
    const content = Array.from({ length: 24 }, (_, i) => `Section ${i}: the survey of the Douro valley vineyards found ${i + 3} terraces needing repair before the harvest.`).join('\n\n');
    const document = await h.api('POST', '/v1/documents', { body: { content, format: 'TXT' } });
    expect(document.status).toBe(202);
    await waitFor('sixteen extractions holding the job queue', async () => (extractions.holding() >= 16 ? true : undefined));

    const write = h.api('POST', '/compat/tex/ingestion/memory', {
      body: { scope: { org_id: 'org_busy', session_id: 'busy-1' }, turns: [{ role: 'user', text: 'Remind me to water the ficus on Sunday.' }] },
    });
    const answer = await within(write, 'the Tex write while the job queue is full', async () => ({ holding: extractions.holding() }), 20_000);
    expect(answer.status).toBe(202);
    const found = await h.api('POST', '/v1/search', { body: { query: 'water the ficus', mode: 'bm25', filters: { session_id: 'busy-1' } } });
    expect(found.body.results.map((result: { id: string }) => result.id)).toContain(`mem_${answer.body.active_fragment_ids[0]}`);

    extractions.release();
    expect((await h.waitForJob('acme', document.body.job_id, 120_000)).status).toBe('completed');
    expect((await h.waitForJob('acme', answer.body.job_id, 120_000)).status).toBe('completed');
  });
});
