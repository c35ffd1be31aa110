import { ApplicationFailure } from '@temporalio/common';
import { documentIngest, NativeDocumentRequest } from '../api/native';
import { prepareJob } from '../lib/job-request';
import { startHarness, type Harness } from './support/harness';

/**
 * A document sent again under its id (or a URL ingested again) is a new version of one source: once
 * the new version's job completes, the earlier version's memories are gone, whatever order the jobs
 * finish in; an edited memory stays; content without a caller's id is never replaced.
 */
describe('pipeline: a new version of a document replaces the old one', () => {
  let h: Harness;
  const failedOnce = new Set<string>();
  /** "held" jobs wait in extraction until released; "fail-after-index" jobs fail once their memories are written. */
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));
  /** "slow" jobs wait in extraction until released, then go on. */
  let releaseSlow: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
  /** "before-upgrade" jobs wait in extraction until released, then go on. */
  let releaseBeforeUpgrade: () => void = () => undefined;
  const beforeUpgrade = new Promise<void>((resolve) => (releaseBeforeUpgrade = resolve));
  beforeAll(async () => {
    h = await startHarness({
      // Small chunks: each paragraph of these documents is a chunk of its own, with memories of its own.
      env: { CHUNK_TOKENS: '16', CHUNK_OVERLAP_TOKENS: '0' },
      // A fault injected into the parse stage (not a test double): a "fail-once" source fails its first parse.
      wrapActivities: (activities) => ({
        ...activities,
        parseSource: async (input, fetched) => {
          if (input.request.metadata?.test === 'fail-once' && !failedOnce.has(input.sourceId)) {
            failedOnce.add(input.sourceId);
            throw ApplicationFailure.nonRetryable('injected failure', 'injected');
          }
          return activities.parseSource(input, fetched);
        },
        extractMemories: async (input, ...rest) => {
          if (input.request.metadata?.test === 'held') await held;
          if (input.request.metadata?.test === 'slow') await slow;
          if (input.request.metadata?.test === 'before-upgrade') await beforeUpgrade;
          return activities.extractMemories(input, ...rest);
        },
        indexMemories: async (input, ...rest) => {
          const result = await activities.indexMemories(input, ...rest);
          if (input.request.metadata?.test === 'held') throw ApplicationFailure.nonRetryable('injected failure after indexing', 'injected');
          return result;
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  async function memoriesOf(sourceId: string) {
    await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
    const { hits } = await h.runtime.es.search<{ text: string; updated_at?: string | null; provenance: { job_id: string; version_at?: string } }>({
      index: h.runtime.indices.memories,
      size: 100,
      query: { term: { 'provenance.source_id': sourceId } },
    });
    return hits.hits.map((hit) => ({ id: hit._id!, ...hit._source! }));
  }

  async function ingest(body: object) {
    const accepted = await h.api('POST', '/v1/documents', { body });
    expect(accepted.status).toBe(202);
    return accepted.body as { job_id: string; source_id: string };
  }

  it('the new version\'s memories replace the old version\'s; an edited one stays; documents without an id are kept side by side', async () => {
    const v1 = await ingest({ document_id: 'harbour-guide', content: 'The harbour ferry leaves at nine every morning.\n\nThe harbour master is Ingrid Solberg.' });
    expect((await h.waitForJob('acme', v1.job_id)).status).toBe('completed');
    const old = await memoriesOf(v1.source_id);
    expect(old.length).toBeGreaterThan(1);
    expect(old.some((memory) => /leaves at nine/.test(memory.text))).toBe(true);
    expect(old.every((memory) => memory.provenance.version_at)).toBe(true);
    // One memory of the first version is edited by hand: an edit is never retired.
    const edited = old.find((memory) => /Ingrid/.test(memory.text))!;
    expect((await h.api('PATCH', `/v1/memories/${edited.id}`, { body: { content: 'Note: the harbour office closes at five.' } })).status).toBe(200);

    const v2 = await ingest({ document_id: 'harbour-guide', content: 'The harbour ferry now leaves at ten, on weekdays only.' });
    expect(v2.source_id).toBe(v1.source_id);
    expect((await h.waitForJob('acme', v2.job_id)).status).toBe('completed');
    const now = await memoriesOf(v1.source_id);
    expect(now.filter((memory) => memory.provenance.job_id === v1.job_id).map((memory) => memory.id)).toEqual([edited.id]);
    expect(now.some((memory) => memory.provenance.job_id === v2.job_id && /ten/.test(memory.text))).toBe(true);
    expect(now.some((memory) => /leaves at nine/.test(memory.text))).toBe(false);

    // Without a document id, two texts are two sources: neither replaces the other.
    const a = await ingest({ content: 'The lighthouse lamp was replaced in April.' });
    const b = await ingest({ content: 'The lighthouse lamp was replaced in May.' });
    await Promise.all([h.waitForJob('acme', a.job_id), h.waitForJob('acme', b.job_id)]);
    expect((await memoriesOf(a.source_id)).length).toBeGreaterThan(0);
    expect((await memoriesOf(b.source_id)).length).toBeGreaterThan(0);
  });

  it('two versions accepted in the same millisecond are still two versions: the later one replaces the earlier', async () => {
    // The wall clock held still at now across both acceptances, as two sends in one millisecond see it:
    // Date is faked for these two requests only, and timers are left real.
    const timers = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;
    jest.useFakeTimers({ doNotFake: [...timers] });
    let v1: { job_id: string; source_id: string };
    let v2: { job_id: string; source_id: string };
    try {
      v1 = await ingest({ document_id: 'pier-guide', content: 'The pier kiosk sells maps of the bay.' });
      v2 = await ingest({ document_id: 'pier-guide', content: 'The pier kiosk now sells tide tables only.' });
    } finally {
      jest.useRealTimers();
    }
    await Promise.all([h.waitForJob('acme', v1.job_id), h.waitForJob('acme', v2.job_id)]);
    const after = await memoriesOf(v2.source_id);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((memory) => memory.provenance.job_id === v2.job_id)).toBe(true);
    expect(after.some((memory) => /maps of the bay/.test(memory.text))).toBe(false);
  });

  it('an older version that completes after a newer one writes nothing over it and leaves nothing behind', async () => {
    // The first version fails, the second completes, then the first is retried: it runs last, as the
    // older version, and must neither overwrite the newer memories nor leave its own.
    const shared = 'The tram depot opens at six.';
    const v1 = await ingest({ document_id: 'tram-guide', content: `${shared}\n\nThe number 4 tram goes to the old port.`, metadata: { test: 'fail-once' } });
    expect((await h.waitForJob('acme', v1.job_id)).status).toBe('failed');
    const v2 = await ingest({ document_id: 'tram-guide', content: `${shared}\n\nThe number 4 tram now ends at the station.` });
    expect((await h.waitForJob('acme', v2.job_id)).status).toBe('completed');
    const newer = await memoriesOf(v2.source_id);

    const retry = await h.api('POST', `/v1/jobs/${v1.job_id}/retry`);
    expect(retry.status).toBe(202);
    expect((await h.waitForJob('acme', retry.body.job_id)).status).toBe('completed');
    const after = await memoriesOf(v2.source_id);
    // Exactly the newer version's memories, untouched: same ids, same job, nothing about the old port.
    expect(after.map((memory) => [memory.id, memory.provenance.job_id]).sort()).toEqual(newer.map((memory) => [memory.id, memory.provenance.job_id]).sort());
    expect(after.some((memory) => /old port/.test(memory.text))).toBe(false);
  });

  it('an older version that fails after a newer one completed takes the memories it wrote with it', async () => {
    const v1 = await ingest({ document_id: 'ferry-guide', content: 'The ferry to the island runs hourly.\n\nThe island café sells fish soup.', metadata: { test: 'held' } });
    const v2 = await ingest({ document_id: 'ferry-guide', content: 'The ferry to the island now runs every two hours.' });
    expect((await h.waitForJob('acme', v2.job_id)).status).toBe('completed');
    releaseHeld();
    const failed = await h.waitForJob('acme', v1.job_id);
    expect(failed.status).toBe('failed');
    const after = await memoriesOf(v2.source_id);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((memory) => memory.provenance.job_id === v2.job_id)).toBe(true);
    expect(after.some((memory) => /fish soup|runs hourly/.test(memory.text))).toBe(false);
  });

  it('the same content sent twice without a document id ends as the later send left it, whichever job finishes last', async () => {
    const content = 'The boathouse rents kayaks by the hour.\n\nThe boathouse café opens at noon.';
    const first = await ingest({ content, metadata: { test: 'slow', send: 'first' } });
    const second = await ingest({ content, metadata: { send: 'second' } });
    expect(second.source_id).toBe(first.source_id);
    expect((await h.waitForJob('acme', second.job_id)).status).toBe('completed');
    releaseSlow();
    expect((await h.waitForJob('acme', first.job_id)).status).toBe('completed');

    const record = (await h.api('GET', `/v1/sources/${first.source_id}`)).body;
    expect(record).toMatchObject({ last_job_id: second.job_id, metadata: { send: 'second' } });
    const stored = await memoriesOf(first.source_id);
    expect(stored.length).toBeGreaterThan(1);
    expect(stored.map((memory) => memory.provenance.job_id)).toEqual(stored.map(() => second.job_id));
    expect(record.memory_count).toBe(stored.length);
  });

  it('a send without a document id that the release before versions started, finishing after the same content sent since, leaves the later send as the source', async () => {
    // An upgrade with the job in flight: its input, as that release's API made it, has no versionAt.
    const content = 'The ropewalk museum opens on Sundays.\n\nThe ropewalk café serves cod cakes.';
    const request = documentIngest('acme', NativeDocumentRequest.parse({ content, metadata: { test: 'before-upgrade', send: 'first' } }));
    const { workflowInput, workflowId, durable } = await prepareJob(request, {}, { config: h.config, blobs: h.runtime.blobs });
    await durable;
    const { versionAt: _versionAt, ...unversioned } = workflowInput;
    const first = await h.temporal.client.workflow.start('ingestWorkflow', { taskQueue: h.config.TEMPORAL_TASK_QUEUE, workflowId, args: [unversioned] });

    const second = await ingest({ content, metadata: { send: 'second' } });
    expect(second.source_id).toBe(workflowInput.sourceId);
    expect((await h.waitForJob('acme', second.job_id)).status).toBe('completed');
    releaseBeforeUpgrade();
    expect(await first.result()).toMatchObject({ status: 'completed' });

    const record = (await h.api('GET', `/v1/sources/${second.source_id}`)).body;
    expect(record).toMatchObject({ last_job_id: second.job_id, metadata: { send: 'second' } });
    const stored = await memoriesOf(second.source_id);
    expect(stored.length).toBeGreaterThan(1);
    expect(stored.map((memory) => memory.provenance.job_id)).toEqual(stored.map(() => second.job_id));
  });
});
