import { temporal } from '@temporalio/proto';
import type { Activities } from '../activities/registry';
import { upstreamFailure } from '../lib/errors';
import { makePdf, textFixture } from './fixtures/documents';
import { bulkFailure } from '../lib/elasticsearch/client';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Attempt numbers of each run of an activity type, read from the workflow's real history: regular
 * activities by their started events, local ones (small jobs try some stages locally first) by the
 * marker each run records.
 */
function attemptsOf(events: HistoryEvent[], activityType: string): number[] {
  const scheduled = new Set(
    events.filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === activityType).map((event) => Number(event.eventId)),
  );
  const regular = events
    .filter((event) => event.activityTaskStartedEventAttributes && scheduled.has(Number(event.activityTaskStartedEventAttributes.scheduledEventId)))
    .map((event) => event.activityTaskStartedEventAttributes!.attempt!);
  const local = events
    .filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity')
    .map((event) => JSON.parse(Buffer.from(event.markerRecordedEventAttributes!.details!.data!.payloads![0]!.data!).toString('utf8')) as { activity_type: string; attempt: number })
    .filter((marker) => marker.activity_type === activityType)
    .map((marker) => marker.attempt);
  return [...local, ...regular];
}

/**
 * Faults through the real pipeline: transient failures retry without duplicating anything, bad input
 * fails the job once with a readable reason, refused URLs are refused, and big content moves by
 * reference only.
 */
describe('pipeline: faults, retries and payload sizes', () => {
  let h: Harness;
  const flakyFailures = new Map<string, number>();
  /** While set, a "held" document's entity resolution fails as a model that is down does. */
  let modelDown = false;
  /** Jobs whose source record is written at one instant: each waits here until all of them have come. */
  const together = { expected: 0, arrived: 0, release: () => undefined as void, released: Promise.resolve() };

  beforeAll(async () => {
    h = await startHarness({
      // Small batches make extraction and indexing fan out; private URLs stay refused (the default).
      env: { BATCH_SIZE: '2', BATCH_CONCURRENCY: '2' },
      wrapActivities: (activities: Activities) => ({
        ...activities,
        // A completed job's bookkeeping (its source record first) waits for the others of the source.
        completeJob: async (...args: Parameters<Activities['completeJob']>) => {
          if (args[0].request.metadata?.together === true && ++together.arrived === together.expected) together.release();
          if (args[0].request.metadata?.together === true) await together.released;
          return activities.completeJob(...args);
        },
        resolveEntities: async (...args: Parameters<Activities['resolveEntities']>) => {
          if (modelDown && args[0].request.documentId === 'held') throw upstreamFailure('the embedding model is down (injected)');
          return activities.resolveEntities(...args);
        },
        // Fails after writing, twice: the worst case for duplicates (the write happened, the ack did not).
        indexMemories: async (...args: Parameters<Activities['indexMemories']>) => {
          const result = await activities.indexMemories(...args);
          const [{ jobId, request }] = args;
          const failures = flakyFailures.get(jobId) ?? 0;
          if (request.documentId === 'flaky' && failures < 2) {
            flakyFailures.set(jobId, failures + 1);
            throw upstreamFailure(`Elasticsearch connection reset (injected fault ${failures + 1})`);
          }
          return result;
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  it('an index activity that fails twice then succeeds completes with no duplicate memories', async () => {
    const started = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', documentId: 'flaky', content: textFixture(5) });
    const progress = await h.waitForJob('acme', started.jobId, 90_000);
    expect(progress.status).toBe('completed');
    expect(flakyFailures.get(started.jobId)).toBe(2);
    const { events } = await h.jobs.handle('acme', started.jobId).fetchHistory();
    // Several batches ran (fan-out); the first batch to fail took three attempts, the rest one or more.
    expect(progress.counts.chunks).toBeGreaterThan(2);
    const attempts = attemptsOf(events!, 'indexMemories');
    expect(attempts).toHaveLength(Math.ceil(progress.counts.chunks / 2));
    expect(attempts.reduce((a, b) => a + b, 0)).toBe(attempts.length + 2);
    const { count } = await h.runtime.es.count({ index: h.runtime.indices.memories, query: { term: { 'provenance.job_id': started.jobId } } });
    expect(count).toBe(progress.counts.chunks);
    expect(progress.memories_created).toBe(progress.counts.chunks);
  });

  it('a job held by a failing stage says which and why in its status, and stops saying so once it moves', async () => {
    modelDown = true;
    try {
      const started = await h.api('POST', '/v1/documents', { body: { content: 'Petra restores stained glass in Antwerp.', document_id: 'held' } });
      const held = await waitFor('the status to say why the job waits', async () => {
        const status = (await h.api('GET', `/v1/jobs/${started.body.job_id}`)).body;
        return status.retrying?.length ? status : undefined;
      }, { timeoutMs: 45_000, intervalMs: 1_000 });
      expect(held).toMatchObject({ status: 'running', stage: 'resolve-entities' });
      expect(held.retrying).toEqual([{ activity: 'resolveEntities', attempt: expect.any(Number), last_failure: 'the embedding model is down (injected)', next_attempt_at: expect.any(String) }]);
      expect(held.retrying[0].attempt).toBeGreaterThan(1);
      modelDown = false;
      const done = await h.waitForJob('acme', started.body.job_id);
      expect(done.status).toBe('completed');
      expect((await h.api('GET', `/v1/jobs/${started.body.job_id}`)).body.retrying).toBeUndefined();
    } finally {
      modelDown = false;
    }
  }, 90_000);

  it('a bulk item Elasticsearch refuses for its content is bad input (no retry); other refusals are transient', async () => {
    // A real refusal: a metadata term over the flattened field's 32,766 bytes.
    const response = await h.runtime.es.bulk({
      operations: [{ index: { _index: h.runtime.indices.memories, _id: 'mem_refused' } }, { id: 'mem_refused', text: 'x', metadata: { note: '字'.repeat(11_000) } }],
    });
    expect(response.errors).toBe(true);
    expect(bulkFailure(response, 'memories')).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/^Elasticsearch rejected memories: /) });
    const rejected = { ...response, items: [{ index: { _index: 'x', _id: 'y', status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } }] };
    expect(bulkFailure(rejected, 'memories')).toMatchObject({ code: 'upstream_failure' });
  });

  it('a corrupt PDF fails the job once, with a readable reason and no retries', async () => {
    const corrupt = new TextEncoder().encode('%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\ngarbage without xref\n%%EOF\n');
    const started = await h.jobs.start({ tenant: 'acme', kind: 'file', format: 'PDF', content: corrupt, fileName: 'broken.pdf' });
    const progress = await h.waitForJob('acme', started.jobId);
    expect(progress.status).toBe('failed');
    expect(progress.stages.parse.state).toBe('failed');
    expect(progress.errors).toEqual([{ stage: 'parse', code: 'bad_input', message: expect.stringMatching(/^the PDF could not be read/) }]);
    const { events } = await h.jobs.handle('acme', started.jobId).fetchHistory();
    expect(attemptsOf(events!, 'parseSource')).toEqual([1]);
    const description = await h.jobs.handle('acme', started.jobId).describe();
    expect(description.status.name).toBe('FAILED');
    const summary = await h.runtime.es.get<{ status: string }>({ index: h.runtime.indices.jobs, id: `acme:${started.jobId}` });
    expect(summary._source!.status).toBe('failed');
  });

  it('markup nested past any page (200,000 levels) fails the job at once saying so, not after a minute of parsing and retries', async () => {
    const content = `<html><body>${'<div>'.repeat(200_000)}Deep inside.${'</div>'.repeat(200_000)}</body></html>`;
    const started = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'HTML', content });
    const progress = await h.waitForJob('acme', started.jobId);
    expect(progress.status).toBe('failed');
    expect(progress.errors).toEqual([{ stage: 'parse', code: 'bad_input', message: 'the HTML page is nested over 10,000 elements deep' }]);
    expect(progress.stages.parse.duration_ms).toBeLessThan(10_000);
  });

  it('content with no letters, digits or emoji (control characters, markdown rules) fails instead of storing junk', async () => {
    const jobs = await Promise.all([
      h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: '\u0001\u0002\u200b\ufeff \u0003' }),
      h.jobs.start({ tenant: 'acme', kind: 'document', format: 'MARKDOWN', content: '# \n---\n***\n' }),
    ]);
    // Symbols and emoji alone are something to remember (a rating, a reaction).
    const rating = await h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: '★★★★☆ 👍' });
    expect((await h.waitForJob('acme', rating.jobId)).status).toBe('completed');
    for (const started of jobs) {
      const progress = await h.waitForJob('acme', started.jobId);
      expect(progress.status).toBe('failed');
      expect(progress.memories_created).toBe(0);
      expect(progress.errors[0]).toMatchObject({ stage: 'parse', code: 'bad_input', message: expect.stringMatching(/no (readable )?text/) });
    }
  });

  it('an image declared as a PDF is refused by name', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array(64).fill(0)]);
    const started = await h.jobs.start({ tenant: 'acme', kind: 'file', format: 'PDF', content: png });
    const progress = await h.waitForJob('acme', started.jobId);
    expect(progress.status).toBe('failed');
    expect(progress.errors[0]).toMatchObject({ code: 'unsupported_media_type', message: expect.stringMatching(/PNG image/) });
  });

  it('text over the format limit is refused when sent, and fails with payload_too_large when it arrives by reference', async () => {
    const tooBig = 'a'.repeat(5 * 1024 * 1024 + 1);
    await expect(h.jobs.start({ tenant: 'acme', kind: 'file', format: 'TXT', content: tooBig })).rejects.toMatchObject({ code: 'payload_too_large' });
    // Content already in the blob store (as a backfill or a fetch leaves it) is checked by the parse stage.
    await h.runtime.blobs.put('acme/preloaded/too-big.txt', tooBig);
    const started = await h.jobs.start({ tenant: 'acme', kind: 'file', format: 'TXT', blobKey: 'acme/preloaded/too-big.txt' });
    const progress = await h.waitForJob('acme', started.jobId);
    expect(progress.status).toBe('failed');
    expect(progress.errors[0]).toMatchObject({ stage: 'parse', code: 'payload_too_large' });
  });

  it('two uploads that differ only in bytes that are not valid text are two sources', async () => {
    const sourceOf = async (bytes: number[]) =>
      (await h.jobs.start({ tenant: 'acme', kind: 'file', format: 'TXT', content: Buffer.from(bytes), scope: { userId: 'bytes-check' } })).sourceId;
    expect(await sourceOf([0xc0, 0x80, 0xff])).not.toBe(await sourceOf([0xc1, 0x81, 0xfe]));
  });

  it('a URL to a loopback or metadata address is refused and the job fails saying so', async () => {
    for (const sourceUrl of ['http://127.0.0.1:9200/_cat/indices', 'http://169.254.169.254/latest/meta-data/']) {
      const started = await h.jobs.start({ tenant: 'acme', kind: 'url', format: 'URL', sourceUrl });
      const progress = await h.waitForJob('acme', started.jobId);
      expect(progress.status).toBe('failed');
      expect(progress.errors[0]).toMatchObject({ stage: 'fetch', code: 'bad_input', message: expect.stringMatching(/refused/) });
      const { events } = await h.jobs.handle('acme', started.jobId).fetchHistory();
      expect(attemptsOf(events!, 'fetchSource')).toEqual([1]);
    }
  });

  it('a 20 MB PDF moves by reference: no workflow history event exceeds a few KB', async () => {
    const pdf = await makePdf([['A large report about the Tagus estuary.'], ['Its appendix is a 19 MB binary attachment.']], {
      attachmentBytes: 19 * 1024 * 1024,
    });
    expect(pdf.length).toBeGreaterThan(19 * 1024 * 1024);
    expect(pdf.length).toBeLessThanOrEqual(20 * 1024 * 1024);
    const started = await h.jobs.start({ tenant: 'acme', kind: 'file', format: 'PDF', content: pdf, fileName: 'report.pdf' });
    const progress = await h.waitForJob('acme', started.jobId, 90_000);
    expect(progress.errors).toEqual([]);
    expect(progress.status).toBe('completed');
    expect(progress.counts.bytes).toBe(pdf.length);
    expect(progress.memories_created).toBeGreaterThan(0);
    const { events } = await h.jobs.handle('acme', started.jobId).fetchHistory();
    const sizes = events!.map((event) => temporal.api.history.v1.HistoryEvent.encode(event).finish().length);
    expect(Math.max(...sizes)).toBeLessThan(4 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(64 * 1024);
  });

  it('jobs of one source that finish together all record it, none failing on another\'s write', async () => {
    // The same text sent six times is one source (its content's hash): six jobs write its record at once.
    together.expected = 6;
    together.released = new Promise<void>((resolve) => (together.release = resolve));
    const content = 'The lighthouse keeper logs the ferry times every evening.';
    const started = await Promise.all(Array.from({ length: 6 }, () => h.jobs.start({ tenant: 'acme', kind: 'document', format: 'TXT', content, metadata: { together: true } })));
    expect(new Set(started.map((job) => job.sourceId)).size).toBe(1);
    for (const job of started) {
      expect((await h.waitForJob('acme', job.jobId, 90_000)).status).toBe('completed');
      const { events } = await h.jobs.handle('acme', job.jobId).fetchHistory();
      // One attempt each: a write refused because another landed first is applied again by Elasticsearch.
      expect(attemptsOf(events!, 'completeJob')).toEqual([1]);
    }
    const record = await h.runtime.es.get<{ last_job_id: string }>({ index: h.runtime.indices.sources, id: started[0]!.sourceId });
    expect(started.map((job) => job.jobId)).toContain(record._source!.last_job_id);
  });
});
