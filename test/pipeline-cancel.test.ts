import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('cancelling a job while it indexes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      // One small chunk per batch, one batch at a time: the job indexes in several steps.
      env: { BATCH_SIZE: '1', BATCH_CONCURRENCY: '1', CHUNK_TOKENS: '24', CHUNK_OVERLAP_TOKENS: '0' },
      // A slow index write after the first (a delay injected into the stage, not a test double): the
      // cancel lands while a batch is on its way to Elasticsearch.
      wrapActivities: (activities) => ({
        ...activities,
        indexMemories: async (input, parsed, chunked, resolved, range) => {
          if (range.batch >= 1) await sleep(2500);
          return activities.indexMemories(input, parsed, chunked, resolved, range);
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  const countOf = async (jobId: string) => {
    await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
    return (await h.runtime.es.count({ index: h.runtime.indices.memories, query: { term: { 'provenance.job_id': jobId } } })).count;
  };

  it('stops writing, and reports as created exactly the memories that stay searchable', async () => {
    const text = [
      'Alice Martin lives in Lisbon and works at Acme Corp as an engineer.',
      'Bob Stone moved to Berlin in 2021 and loves hiking in the Alps.',
      'Carol King prefers green tea and reads Tolstoy every winter evening.',
      'Dan Brown visited Tokyo in May 2023 for a robotics conference.',
      'Erin Holt repairs old clocks in a workshop near the harbour.',
    ].join('\n\n');
    const started = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: text });
    // Cancel once the first batch is searchable and the next is being written.
    await waitFor('the first batch indexed', async () => ((await countOf(started.jobId)) > 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    await h.jobs.cancel('acme', started.jobId);
    const progress = await h.waitForJob('acme', started.jobId);
    expect(progress.status).toBe('cancelled');
    expect(progress.counts.chunks).toBeGreaterThanOrEqual(4);

    const searchable = await countOf(started.jobId);
    expect(searchable).toBeGreaterThan(0);
    expect(searchable).toBeLessThan(progress.counts.chunks);
    expect(progress.memories_created).toBe(searchable);
    // Nothing lands after the job said it was cancelled (the delayed write has had time to).
    await sleep(4000);
    expect(await countOf(started.jobId)).toBe(searchable);
    // The stored summary says the same.
    expect((await h.api('GET', `/v1/jobs/${started.jobId}`)).body).toMatchObject({ status: 'cancelled', memories_created: searchable });
  });
  it("shows the index stage's progress batch by batch, while it runs", async () => {
    const text = ['Fay Lin teaches violin in Porto.', 'Gus Moor sails to Madeira each June.', 'Hana Sato grows bonsai in Kyoto.', 'Ivo Petrov runs a bakery in Sofia.'].join('\n\n');
    const started = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: text });
    const during = await waitFor('a batch indexed, the stage still running', async () => {
      const progress = (await h.api('GET', `/v1/jobs/${started.jobId}`)).body;
      return progress.stage === 'index' && progress.status === 'running' && progress.stages.index.count > 0 ? progress : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    expect(during.counts.memories).toBe(during.stages.index.count);
    expect(during.counts.memories).toBeLessThan(during.counts.chunks);
    expect(during.stages.extract.count).toBeGreaterThanOrEqual(during.counts.chunks);
    const done = await h.waitForJob('acme', started.jobId);
    expect(done).toMatchObject({ status: 'completed', memories_created: done.counts.chunks, counts: { memories: done.counts.chunks } });
  });
  // Last in this file: it stops the worker.
  it("answers a poll the workflow cannot answer in time with the job's last known progress, not counts back at zero", async () => {
    const text = ['Jun Park restores pianos in Busan.', 'Kira Vance climbs in Patagonia.', 'Lior Ben paints murals in Haifa.', 'Mila Novak keeps bees in Ljubljana.'].join('\n\n');
    const started = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: text });
    const known = await waitFor('a batch indexed', async () => {
      const progress = (await h.api('GET', `/v1/jobs/${started.jobId}`)).body;
      return progress.stage === 'index' && progress.stages.index.count > 0 ? progress : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    // With no worker, the workflow answers no query: the poll runs past its budget.
    h.worker.shutdown();
    const polled = await h.api('GET', `/v1/jobs/${started.jobId}`);
    expect(polled.status).toBe(200);
    expect(polled.body).toMatchObject({ status: 'running', stage: 'index', counts: { chunks: known.counts.chunks } });
    expect(polled.body.stages.index.count).toBeGreaterThanOrEqual(known.stages.index.count);
  });
});
