import { MAX_JOB_BATCHES } from '../workflows/ingest/stages';
import { textFixture } from './fixtures/documents';
import { startHarness, type Harness } from './support/harness';

/** What the disk says when it is full, as Node's fs raises it. */
const diskFull = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
/** What a failing disk says. */
const diskFault = () => Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO', errno: -5, syscall: 'write' });

/**
 * Cairn running out of something. Its own disk (the blob store's folder) full: a request that must
 * write to it is a 503 to retry, not a 500, and a job accepted before the disk filled waits for room
 * instead of failing. A job too large for one workflow history fails saying so before it starts.
 */
describe('resource limits', () => {
  let h: Harness;
  /** Blob keys whose writes fail as on a full disk, until `fullUntil` (ms since the epoch). */
  let fills: (key: string) => boolean = () => false;
  let fullUntil = 0;
  let failure = diskFull;

  beforeAll(async () => {
    // One chunk a batch: a job of MAX_JOB_BATCHES batches is a conversation of as many turns.
    h = await startHarness({ env: { BATCH_SIZE: '1' } });
    // The API and the worker share this store: the disk is full for both.
    const blobs = h.runtime.blobs;
    const put = blobs.put.bind(blobs);
    const write = blobs.write.bind(blobs);
    const full = (key: string) => Date.now() < fullUntil && fills(key);
    blobs.put = async (key, data) => (full(key) ? Promise.reject(failure()) : put(key, data));
    blobs.write = async (key, data) => (full(key) ? Promise.reject(failure()) : write(key, data));
  });
  afterAll(async () => h?.close());

  it('an upload while the disk is full is a 503 with Retry-After that says so, and is accepted once there is room', async () => {
    fills = () => true;
    fullUntil = Date.now() + 60_000;
    const form = new FormData();
    form.append('file', new Blob(['Ines keeps bees on her roof in Porto.'], { type: 'text/plain' }), 'bees.txt');
    const refused = await h.api('POST', '/v1/files', { body: form });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body.error).toEqual({ code: 'upstream_failure', message: "Cairn's storage cannot take writes now: no space left on its disk (ENOSPC)" });

    fullUntil = 0;
    const again = new FormData();
    again.append('file', new Blob(['Ines keeps bees on her roof in Porto.'], { type: 'text/plain' }), 'bees.txt');
    const accepted = await h.api('POST', '/v1/files', { body: again });
    expect(accepted.status).toBe(202);
    expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
  });

  it('a job accepted before the disk filled waits for room past its stage retries, then completes', async () => {
    // Accepted (its upload stored), then the disk fills before its parse can store the parsed text:
    // for 20 s, longer than the parse stage's own retries (about 15 s).
    fills = (key) => key.endsWith('/parsed.json');
    fullUntil = Date.now() + 20_000;
    const sent = await h.api('POST', '/v1/documents', { body: { content: textFixture(3), format: 'TXT' } });
    expect(sent.status).toBe(202);
    const job = await h.waitForJob('acme', sent.body.job_id, 90_000);
    expect(job.errors).toEqual([]);
    expect(job.status).toBe('completed');
    expect(job.counts.memories).toBeGreaterThan(0);
  }, 120_000);

  it('a job whose disk reports an I/O error waits for it as for a full disk, then completes', async () => {
    failure = diskFault;
    fills = (key) => key.endsWith('/parsed.json');
    fullUntil = Date.now() + 20_000;
    try {
      const sent = await h.api('POST', '/v1/documents', { body: { content: textFixture(2), format: 'TXT' } });
      expect(sent.status).toBe(202);
      const job = await h.waitForJob('acme', sent.body.job_id, 90_000);
      expect(job.errors).toEqual([]);
      expect(job.status).toBe('completed');
    } finally {
      failure = diskFull;
    }
  }, 120_000);

  it('a conversation of more batches than one job holds fails at its chunk stage saying so, before anything is extracted', async () => {
    const messages = Array.from({ length: MAX_JOB_BATCHES + 1 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `Turn ${i}: Lea waters the ferns.` }));
    const sent = await h.api('POST', '/v1/conversations', { body: { messages } });
    expect(sent.status).toBe(202);
    const job = await h.waitForJob('acme', sent.body.job_id, 30_000);
    expect(job.status).toBe('failed');
    expect(job.stages.extract?.state).toBe('pending');
    expect(job.errors).toEqual([
      {
        stage: 'chunk',
        code: 'payload_too_large',
        message: `the content makes ${MAX_JOB_BATCHES + 1} chunks, more than one job takes (${MAX_JOB_BATCHES}: ${MAX_JOB_BATCHES} batches of 1, kept within Temporal's workflow history limit): send it in parts`,
      },
    ]);
  });
});
