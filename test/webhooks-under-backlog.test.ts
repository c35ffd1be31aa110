import { holdActivity } from './support/faults';
import { startHarness, type Harness } from './support/harness';
import { waitFor, within } from './support/wait';

/**
 * Webhook deliveries run on a task queue of their own: deliveries stuck on receivers that do not
 * answer (here every one held until released) must not take the slots an ingest's stages run in.
 */
describe('ingestion behind a backlog of webhook deliveries', () => {
  let h: Harness;
  const deliveries = holdActivity('deliverJobEvent');

  beforeAll(async () => {
    // One chunk per batch: a document of several chunks runs its stages as regular activities.
    h = await startHarness({ env: { CAIRN_ALLOW_PRIVATE_URLS: 'true', BATCH_SIZE: '1', CHUNK_TOKENS: '40', CHUNK_OVERLAP_TOKENS: '0' }, wrapActivities: deliveries.wrap });
  });
  afterAll(async () => {
    deliveries.release();
    await h?.close();
  });

  it('completes a job whose stages are regular activities while sixteen deliveries hang', async () => {
    const created = await Promise.all(Array.from({ length: 16 }, (_, i) => h.api('POST', '/v1/webhooks', { body: { url: `http://127.0.0.1:9/hook-${i}` } })));
    for (const answer of created) expect(answer.status).toBe(201);
    const first = await h.api('POST', '/v1/documents', { body: { content: 'The lighthouse keeper logged a calm night.' } });
    expect((await h.waitForJob('acme', first.body.job_id)).status).toBe('completed');
    await waitFor('sixteen deliveries hanging', async () => (deliveries.holding() >= 16 ? true : undefined));

    const content = Array.from({ length: 3 }, (_, i) => `Section ${i}: the survey of the Douro valley vineyards found ${i + 3} terraces needing repair before the harvest.`).join('\n\n');
    const document = await h.api('POST', '/v1/documents', { body: { content, format: 'TXT' } });
    expect(document.status).toBe(202);
    const done = await within(h.waitForJob('acme', document.body.job_id, 60_000), 'the job behind hanging deliveries', async () => ({ holding: deliveries.holding() }), 45_000);
    expect(done.status).toBe('completed');
    expect(done.counts.chunks).toBeGreaterThan(1);

    deliveries.release();
  });
});
