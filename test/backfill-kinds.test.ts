import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { backfillWorkflowId } from '../lib/backfill/ids';
import { BackfillRequest, toWorkflowInput, type BackfillProgress } from '../lib/backfill/request';
import { stemmedText } from '../lib/search/analysis';
import { JobKindAttribute, TenantAttribute } from '../lib/temporal/search-attributes';
import { startHarness, type Harness } from './support/harness';
import { waitFor, within } from './support/wait';

/** Import from a folder, re-extract what was imported, and reindex into a new index version. */
describe('backfills: import, re-extract and reindex', () => {
  let h: Harness;
  let dataDir: string;
  /** A fault injected into extraction (not a test double): while set, long.txt's second batch is refused. */
  let refuseLong = false;
  /** While set, the re-extraction of tea.txt sees another job write a memory of the same source meanwhile. */
  let concurrentWrite = false;
  /** held.txt's extraction waits for this to be released (and says it started): a job still running. */
  let heldStarted: () => void = () => undefined;
  const heldRunning = new Promise<void>((resolve) => (heldStarted = resolve));
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));

  /** While set, a reindex's copy says it started and waits for its release: a reindex still walking. */
  let stallCopy: { started: () => void; released: Promise<void> } | undefined;

  /** doomed.txt's extraction says which job runs it, then waits for this to be released. */
  let doomedStarted: (jobId: string) => void = () => undefined;
  const doomedRunning = new Promise<string>((resolve) => (doomedStarted = resolve));
  let releaseDoomed: () => void = () => undefined;
  const doomed = new Promise<void>((resolve) => (releaseDoomed = resolve));

  async function runBackfill(body: Record<string, unknown>, key?: string): Promise<BackfillProgress & { id: string }> {
    const started = await h.api('POST', '/v1/backfills', { body, key });
    expect([started.status, started.body]).toEqual([202, expect.objectContaining({ id: expect.stringMatching(/^bf_/) })]);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const polled = await h.api('GET', `/v1/backfills/${started.body.id}`, { key });
      if (polled.body.status !== 'running' || Date.now() > deadline) return polled.body;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  /** A backfill's progress as the API reads it, with the workflows still open on this suite's task queue. */
  async function progressOf(id: string) {
    const open = await h.temporal.client.workflow.list({ query: `ExecutionStatus = "Running" AND TaskQueue = "${h.config.TEMPORAL_TASK_QUEUE}"` });
    const running: string[] = [];
    for await (const execution of open) if (running.push(`${execution.workflowId} (${execution.type})`) >= 20) break;
    return { backfill: (await h.api('GET', `/v1/backfills/${id}`)).body, running };
  }

  async function memoriesOf(tenant: string) {
    await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
    const { hits } = await h.runtime.es.search<{ provenance: { source_id: string; job_id: string; file_name?: string }; text: string }>({
      index: h.runtime.indices.memories,
      query: { term: { tenant } },
      size: 1000,
    });
    return hits.hits.map((hit) => ({ id: hit._id!, ...hit._source! }));
  }

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-import-'));
    const folder = path.join(dataDir, 'imports', 'acme', 'notes');
    fs.mkdirSync(path.join(folder, 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(folder, 'lisbon.txt'), 'Maria moved to Lisbon in 2023. She works at Acme Robotics as a designer.');
    fs.writeFileSync(path.join(folder, 'deeper', 'coffee.md'), '# Preferences\n\nJohn prefers espresso over filter coffee and drinks it every morning.');
    fs.writeFileSync(path.join(folder, 'tea.txt'), 'Aiko loves green tea from Shizuoka.');
    fs.writeFileSync(path.join(folder, 'photo.bin'), Buffer.from([0, 1, 2, 3]));
    // URL imports fetch from a fixture server on loopback, which the fetch stage otherwise refuses.
    fs.mkdirSync(path.join(dataDir, 'imports', 'acme', 'long'), { recursive: true });
    fs.writeFileSync(
      path.join(dataDir, 'imports', 'acme', 'long', 'long.txt'),
      ['Harbour', 'Ferry', 'Lighthouse', 'Market', 'Bridge'].map((topic) => `${topic}. ${'The crew compared the schedules, the costs and the rotas for the season. '.repeat(30)}`).join('\n\n'),
    );
    fs.mkdirSync(path.join(dataDir, 'imports', 'acme', 'typed'), { recursive: true });
    for (const [name, text] of [['a.txt', 'Invoice 17 was paid in March.'], ['b.txt', 'Invoice 18 was paid in April.'], ['c.txt', 'Invoice 19 is still open.']]) {
      fs.writeFileSync(path.join(dataDir, 'imports', 'acme', 'typed', name!), text!);
    }
    fs.mkdirSync(path.join(dataDir, 'imports', 'acme', 'stoppable'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'imports', 'acme', 'stoppable', 'held.txt'), 'The canal boat tour starts at the north quay.');
    fs.writeFileSync(path.join(dataDir, 'imports', 'acme', 'stoppable', 'later.txt'), 'The canal boat tour ends at the south quay.');
    fs.mkdirSync(path.join(dataDir, 'imports', 'acme', 'one-cancelled'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'imports', 'acme', 'one-cancelled', 'doomed.txt'), 'The night train to Madrid was withdrawn.');
    fs.writeFileSync(path.join(dataDir, 'imports', 'acme', 'one-cancelled', 'spared.txt'), 'The day train to Madrid runs twice a week.');
    h = await startHarness({
      // Small batches, so long.txt has several.
      env: { CAIRN_DATA_DIR: dataDir, CAIRN_ALLOW_PRIVATE_URLS: 'true', BATCH_SIZE: '2' },
      wrapActivities: (activities) => ({
        ...activities,
        copyMemories: async (batch) => {
          if (stallCopy) {
            stallCopy.started();
            await stallCopy.released;
          }
          return activities.copyMemories(batch);
        },
        extractMemories: async (input, parsed, chunked, range) => {
          if (input.request.fileName === 'doomed.txt') {
            doomedStarted(input.jobId);
            await doomed;
          }
          if (input.request.fileName === 'held.txt') {
            heldStarted();
            await held;
          }
          if (refuseLong && input.request.fileName === 'long.txt' && range.batch === 1) throw ApplicationFailure.nonRetryable('the extractor refused this batch', 'injected');
          if (concurrentWrite && input.request.fileName === 'tea.txt') {
            const id = 'mem_concurrent0000000001';
            // A newer version's write (an import of the file as it is now), which the re-extraction of the version before must leave.
            const provenance = { source_id: input.sourceId, job_id: 'another-job', version_at: new Date().toISOString() };
            const document = { id, tenant: 'acme', text: 'Aiko also brews hojicha on Sundays.', type: 'fact', provenance, created_at: new Date().toISOString() };
            await h.runtime.es.index({ index: h.runtime.indices.memories, id, document, refresh: 'wait_for' });
          }
          return activities.extractMemories(input, parsed, chunked, range);
        },
      }),
    });
  });
  afterAll(async () => {
    await h?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('imports every supported file of a folder as ingest jobs, and importing again does not duplicate', async () => {
    const first = await runBackfill({ backfill: 'import', folder: 'notes', concurrency: 2 });
    expect(first).toMatchObject({ status: 'completed', total: 3, processed: 3, failed: 0 });
    const memories = await memoriesOf('acme');
    expect(new Set(memories.map((m) => m.provenance.file_name))).toEqual(new Set(['lisbon.txt', 'coffee.md', 'tea.txt']));
    expect(memories.some((m) => /Lisbon/.test(m.text))).toBe(true);

    const again = await runBackfill({ backfill: 'import', folder: 'notes' });
    expect(again).toMatchObject({ status: 'completed', processed: 3 });
    const after = await memoriesOf('acme');
    expect(after.map((m) => m.id).sort()).toEqual(memories.map((m) => m.id).sort());
  });

  it('imports a list of URLs, each fetched by its own ingest job', async () => {
    const pages: Record<string, string> = {
      '/sailing': '<html><head><title>Sailing</title></head><body><p>Ines sails a small boat on the Tagus every Sunday.</p></body></html>',
      '/chess': '<html><head><title>Chess</title></head><body><p>Tomas plays correspondence chess with a friend in Oslo.</p></body></html>',
    };
    const server = http.createServer((req, res) => {
      const page = pages[req.url ?? ''];
      res.writeHead(page ? 200 : 404, { 'content-type': 'text/html' }).end(page ?? 'not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const result = await runBackfill({ backfill: 'import', urls: [`${base}/sailing`, `${base}/chess`, `${base}/missing`] }, h.keys.globex);
      expect(result).toMatchObject({ status: 'completed', total: 3, processed: 2, failed: 1 });
      expect(result.errors.map((e) => e.item)).toEqual([`url:${base}/missing`]);
      // The job's own reason, not its child workflow's wrapper.
      expect(result.errors[0]!.message).toMatch(/404/);
      const texts = (await memoriesOf('globex')).map((m) => m.text).join(' ');
      expect(texts).toMatch(/Tagus/);
      expect(texts).toMatch(/Oslo/);
    } finally {
      server.close();
    }
  });

  it('fails an import of a folder that does not exist with a reason, and cannot reach outside the tenant folder', async () => {
    const missing = await runBackfill({ backfill: 'import', folder: 'nowhere' });
    expect(missing.status).toBe('failed');
    expect(missing.errors.map((e) => e.message).join(' ')).toMatch(/does not exist/);
    // Named as the caller gave it: the server's paths are not shown.
    expect(missing.errors.map((e) => e.message).join(' ')).not.toContain(dataDir);
    // globex's import root is its own folder: acme's notes are not there.
    const foreign = await runBackfill({ backfill: 'import', folder: 'notes' }, h.keys.globex);
    expect(foreign.status).toBe('failed');
    // Nor do links reach them: a folder linked from outside is refused; in a folder, a file linked
    // from outside, and one named .pdf that is no PDF, are skipped saying why; a link within is read.
    const globexRoot = path.join(dataDir, 'imports', 'globex', 'private');
    fs.mkdirSync(globexRoot, { recursive: true });
    fs.writeFileSync(path.join(globexRoot, 'plan.md'), '# Globex plan\n\nAcquire the harbour.');
    const acmeRoot = path.join(dataDir, 'imports', 'acme');
    fs.symlinkSync(globexRoot, path.join(acmeRoot, 'linked'));
    const mixed = path.join(acmeRoot, 'mixed');
    fs.mkdirSync(mixed);
    fs.symlinkSync(path.join(globexRoot, 'plan.md'), path.join(mixed, 'stolen.md'));
    fs.symlinkSync(path.join(acmeRoot, 'notes', 'lisbon.txt'), path.join(mixed, 'lisbon-again.txt'));
    fs.writeFileSync(path.join(mixed, 'fake.pdf'), 'not a pdf');
    const linked = await runBackfill({ backfill: 'import', folder: 'linked' });
    expect([linked.status, linked.errors.map((e) => e.message).join(' ')]).toEqual(['failed', expect.stringMatching(/link leading outside/)]);
    const imported = await runBackfill({ backfill: 'import', folder: 'mixed' });
    expect(imported).toMatchObject({ status: 'completed', total: 3, processed: 1, skipped: 2 });
    expect(imported.errors.map((e) => e.message).sort()).toEqual([
      'skipped: mixed/fake.pdf: it is named as a PDF but is not one',
      'skipped: mixed/stolen.md: a link leading outside the import folder',
    ]);
    const afterMixed = await memoriesOf('acme');
    expect(JSON.stringify(afterMixed)).not.toMatch(/Acquire the harbour/);
    // The tests after this one count acme's sources: the linked copy goes again.
    const copy = afterMixed.find((memory) => memory.provenance.file_name === 'lisbon-again.txt')!;
    expect((await h.api('DELETE', `/v1/sources/${copy.provenance.source_id}`)).status).toBe(200);
  });

  it('re-extracts every source from its stored content, replacing the memories of the old jobs', async () => {
    // One memory deleted through the API first: a re-extraction does not bring it back.
    const deleted = (await memoriesOf('acme')).find((m) => m.provenance.file_name === 'lisbon.txt')!;
    expect((await h.api('DELETE', `/v1/memories/${deleted.id}`)).status).toBe(204);
    const before = await memoriesOf('acme');
    const oldJobs = new Set(before.map((m) => m.provenance.job_id));
    const result = await runBackfill({ backfill: 'reextract' });
    expect(result).toMatchObject({ status: 'completed', total: 3, processed: 3, failed: 0, skipped: 0 });
    const after = await memoriesOf('acme');
    // Same extractor, same content: the same memories, now written by the re-extraction's jobs.
    expect(after.map((m) => m.id).sort()).toEqual(before.map((m) => m.id).sort());
    expect(after.some((m) => m.id === deleted.id)).toBe(false);
    for (const memory of after) expect(oldJobs.has(memory.provenance.job_id)).toBe(false);
  });

  it('drops only the superseded job\'s memories: another job\'s write to the source meanwhile stays', async () => {
    concurrentWrite = true;
    try {
      expect(await runBackfill({ backfill: 'reextract' })).toMatchObject({ status: 'completed', processed: 3, failed: 0 });
    } finally {
      concurrentWrite = false;
    }
    const tea = (await memoriesOf('acme')).filter((m) => m.text.includes('Aiko'));
    expect(tea.map((m) => m.provenance.job_id)).toContain('another-job');
    expect(tea).toHaveLength(2);
    await h.runtime.es.delete({ index: h.runtime.indices.memories, id: 'mem_concurrent0000000001', refresh: 'wait_for' });
  });

  it('keeps a source\'s earlier memories when its re-extraction leaves a batch out, and counts it as failed', async () => {
    expect(await runBackfill({ backfill: 'import', folder: 'long' })).toMatchObject({ status: 'completed', processed: 1, failed: 0 });
    const before = (await memoriesOf('acme')).filter((m) => m.provenance.file_name === 'long.txt');
    expect(before.length).toBeGreaterThan(3);
    refuseLong = true;
    try {
      const result = await runBackfill({ backfill: 'reextract' });
      expect(result).toMatchObject({ status: 'completed', failed: 1 });
      expect(result.errors).toEqual(expect.arrayContaining([expect.objectContaining({ message: expect.stringMatching(/partly extracted, earlier memories kept/) })]));
    } finally {
      refuseLong = false;
    }
    // Every chunk still has its memory: the re-extraction's own plus the earlier ones, none dropped.
    const after = (await memoriesOf('acme')).filter((m) => m.provenance.file_name === 'long.txt');
    expect(after.map((m) => m.id)).toEqual(expect.arrayContaining(before.map((m) => m.id)));
  });

  it('an import keeps the document type it was asked for across continue-as-new', async () => {
    const result = await runBackfill({ backfill: 'import', folder: 'typed', document_type: 'email', page_size: 1, pages_per_run: 1 });
    expect(result).toMatchObject({ status: 'completed', processed: 3, failed: 0 });
    expect(result.runs).toBeGreaterThan(1);
    const typed = (await memoriesOf('acme')).filter((m) => /Invoice 1[789]/.test(m.text)) as unknown as { provenance: { document_type: string } }[];
    expect(typed.length).toBeGreaterThanOrEqual(3);
    expect(new Set(typed.map((m) => m.provenance.document_type))).toEqual(new Set(['email']));
  });

  it('importing a file that changed replaces its old memories', async () => {
    const folder = path.join(dataDir, 'imports', 'acme', 'changing');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'bob.txt'), 'Bob prefers green tea and lives in Oslo.');
    expect(await runBackfill({ backfill: 'import', folder: 'changing' })).toMatchObject({ status: 'completed', processed: 1 });
    fs.writeFileSync(path.join(folder, 'bob.txt'), 'Bob now prefers espresso and lives in Bergen.');
    expect(await runBackfill({ backfill: 'import', folder: 'changing' })).toMatchObject({ status: 'completed', processed: 1 });
    const bob = (await memoriesOf('acme')).filter((m) => m.provenance.file_name === 'bob.txt');
    expect(bob.length).toBeGreaterThan(0);
    expect(bob.every((m) => /espresso|Bergen/.test(m.text))).toBe(true);
  });

  it('a cancelled backfill says so, stops between items, and the ingest job it was running finishes', async () => {
    const started = await h.api('POST', '/v1/backfills', { body: { backfill: 'import', folder: 'stoppable', concurrency: 1 } });
    expect(started.status).toBe(202);
    await within(heldRunning, "held.txt's extraction to start", () => progressOf(started.body.id));
    expect((await h.api('POST', `/v1/backfills/${started.body.id}/cancel`)).status).toBe(202);
    // The item in flight finishes first (its job is not cancelled), then the backfill stops.
    releaseHeld();
    const progress = await waitFor('the backfill to say cancelled', async () => {
      const polled = await h.api('GET', `/v1/backfills/${started.body.id}`);
      return polled.body.status === 'cancelled' ? polled.body : undefined;
    }, { timeoutMs: 30_000 });
    expect(progress).toMatchObject({ status: 'cancelled', processed: 1, failed: 0 });
    expect((await h.api('POST', `/v1/backfills/${started.body.id}/cancel`)).status).toBe(409);
    // held.txt's job completed; later.txt was never started.
    expect((await memoriesOf('acme')).some((m) => m.text.includes('north quay'))).toBe(true);
    expect((await memoriesOf('acme')).some((m) => m.text.includes('south quay'))).toBe(false);
  });

  it('a job of a backfill cancelled by its user is a failed item: the backfill goes on with the rest', async () => {
    const started = await h.api('POST', '/v1/backfills', { body: { backfill: 'import', folder: 'one-cancelled', concurrency: 1 } });
    expect(started.status).toBe(202);
    const jobId = await within(doomedRunning, "doomed.txt's extraction to start", () => progressOf(started.body.id));
    expect((await h.api('POST', `/v1/jobs/${jobId}/cancel`)).status).toBe(202);
    releaseDoomed();
    const progress = await waitFor('the backfill to finish', async () => {
      const polled = await h.api('GET', `/v1/backfills/${started.body.id}`);
      return polled.body.status !== 'running' ? polled.body : undefined;
    }, { timeoutMs: 60_000 });
    expect(progress).toMatchObject({ status: 'completed', failed: 1 });
    expect((await h.waitForJob('acme', jobId)).status).toBe('cancelled');
    const memories = await memoriesOf('acme');
    expect(memories.some((m) => m.text.includes('day train'))).toBe(true);
  });

  it('re-extracts with the categories and metadata the source was last sent with', async () => {
    // The second send drops a metadata key: the re-extraction must not bring it back.
    const body = (version: number) => ({ content: 'The bakery on Rua Augusta sells custard tarts at dawn.', format: 'TXT', document_id: 'bakery', categories: ['food'], metadata: version === 1 ? { version, team: 'a' } : { version } });
    for (const version of [1, 2]) {
      const accepted = await h.api('POST', '/v1/documents', { body: body(version) });
      expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
    }
    expect(await runBackfill({ backfill: 'reextract' })).toMatchObject({ status: 'completed', failed: 0 });
    const bakery = (await memoriesOf('acme')).filter((m) => m.text.includes('custard')) as unknown as { categories?: string[]; metadata?: { version?: unknown }; provenance: { job_id: string } }[];
    expect(bakery).toHaveLength(1);
    expect(bakery[0]).toMatchObject({ categories: ['food'] });
    expect(bakery[0]!.metadata).toEqual({ version: 2 });
  });

  it('reindexes into the next index version and swaps the alias, keeping every memory searchable', async () => {
    const alias = h.runtime.indices.memories;
    const before = await h.runtime.es.count({ index: alias });
    expect(before.count).toBeGreaterThan(0);
    // A tenant's key, even with admin, may not move every tenant's memories: the operator's may.
    expect((await h.api('POST', '/v1/backfills', { body: { backfill: 'reindex' } })).status).toBe(403);
    expect((await h.api('POST', '/v1/schedules', { body: { backfill: 'reindex', every: '1m' } })).status).toBe(403);
    // A memory stored by an older text analysis: its stems are not what its words give today.
    const espresso = await h.runtime.es.search<{ text: string }>({ index: alias, query: { match: { text: 'espresso' } }, size: 1 });
    const staleId = espresso.hits.hits[0]!._id!;
    await h.runtime.es.update({ index: alias, id: staleId, doc: { stems: 'stale stems' }, refresh: true });
    const result = await runBackfill({ backfill: 'reindex', page_size: 1, batch_size: 1, pages_per_run: 2 }, h.operatorKey);
    expect(result).toMatchObject({ status: 'completed', processed: before.count, total: before.count });
    expect(result.runs).toBeGreaterThan(1);
    expect(result.reindex).toMatchObject({ source: `${alias}-v1`, target: `${alias}-v2`, swapped: true });

    const aliases = await h.runtime.es.indices.getAlias({ name: alias });
    expect(Object.keys(aliases)).toEqual([`${alias}-v2`]);
    expect((await h.runtime.es.count({ index: alias })).count).toBe(before.count);
    const found = await h.api('POST', '/v1/search', { body: { query: 'espresso coffee', mode: 'bm25' } });
    expect(found.status).toBe(200);
    expect(found.body.results.length).toBeGreaterThan(0);
    expect(JSON.stringify(found.body.results[0])).toMatch(/espresso/);
    const restemmed = (await h.runtime.es.get<{ text: string; stems?: string }>({ index: alias, id: staleId }))._source!;
    expect(restemmed.stems).toBe(stemmedText(restemmed.text));

    // New writes land in the new version through the alias.
    const job = await h.api('POST', '/v1/documents', { body: { content: 'Pedro collects vinyl records.', format: 'TXT' } });
    expect(job.status).toBe(202);
    await h.waitForJob('acme', job.body.job_id);
    await h.runtime.es.indices.refresh({ index: `${alias}-v2` });
    const inNew = await h.runtime.es.count({ index: `${alias}-v2`, query: { match: { text: 'vinyl' } } });
    expect(inNew.count).toBeGreaterThan(0);
  });

  it('removes the versions before the one a reindex left, keeping that one; a reindex stopped before its swap leaves no half-filled index', async () => {
    const alias = h.runtime.indices.memories;
    const entities = h.runtime.indices.entities;
    const exists = async (index: string) => (await h.runtime.es.indices.exists({ index })) as boolean;
    // The test before moved v1 to v2; this one moves v2 to v3 and removes v1.
    const result = await runBackfill({ backfill: 'reindex' }, h.operatorKey);
    expect(result).toMatchObject({ status: 'completed', reindex: { source: `${alias}-v2`, target: `${alias}-v3`, swapped: true } });
    expect([...(result.reindex?.removed ?? [])].sort()).toEqual([`${alias}-v1`, `${entities}-v1`].sort());
    expect([await exists(`${alias}-v1`), await exists(`${alias}-v2`), await exists(`${alias}-v3`)]).toEqual([false, true, true]);
    expect([await exists(`${entities}-v1`), await exists(`${entities}-v2`), await exists(`${entities}-v3`)]).toEqual([false, true, true]);

    // Stopped from Temporal (the API refuses to cancel a reindex) while it walks, before its swap.
    let started: () => void = () => undefined;
    const walking = new Promise<void>((resolve) => (started = resolve));
    let release: () => void = () => undefined;
    stallCopy = { started, released: new Promise<void>((resolve) => (release = resolve)) };
    try {
      const accepted = await h.api('POST', '/v1/backfills', { key: h.operatorKey, body: { backfill: 'reindex' } });
      expect(accepted.status).toBe(202);
      await walking;
      expect([await exists(`${alias}-v4`), await exists(`${entities}-v4`)]).toEqual([true, true]);
      const handle = h.temporal.client.workflow.getHandle(backfillWorkflowId('default', accepted.body.id));
      await handle.cancel();
      // The batch in flight finishes before the reindex stops and drops what it filled: stopped
      // under the batch, the batch's writes would create the dropped version again.
      const waited = await Promise.race([handle.result().then(() => 'ended', () => 'ended'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 2_000))]);
      expect(waited).toBe('waiting');
      release();
      await expect(handle.result()).rejects.toThrow();
      const stopped = (await h.api('GET', `/v1/backfills/${accepted.body.id}`, { key: h.operatorKey })).body;
      expect(stopped).toMatchObject({ status: 'cancelled', reindex: { target: `${alias}-v4`, swapped: false } });
      expect([...(stopped.reindex?.removed ?? [])].sort()).toEqual([`${alias}-v4`, `${entities}-v4`].sort());
      expect([await exists(`${alias}-v4`), await exists(`${entities}-v4`)]).toEqual([false, false]);
      expect(Object.keys(await h.runtime.es.indices.getAlias({ name: alias }))).toEqual([`${alias}-v3`]);
    } finally {
      stallCopy = undefined;
      release();
    }
    // The held copy had ended before the drop: nothing writes v4 again (Elasticsearch would make the
    // index on its own, with a dynamic mapping). The next reindex builds v4 afresh, strict, and swaps onto it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await exists(`${alias}-v4`)).toBe(false);
    const next = await runBackfill({ backfill: 'reindex' }, h.operatorKey);
    expect(next).toMatchObject({ status: 'completed', reindex: { source: `${alias}-v3`, target: `${alias}-v4`, swapped: true } });
    const built = await h.runtime.es.indices.getMapping({ index: `${alias}-v4` });
    expect(built[`${alias}-v4`]?.mappings.dynamic).toBe('strict');
    expect((await h.runtime.es.count({ index: alias })).count).toBe((await h.runtime.es.count({ index: `${alias}-v3` })).count);
  });

  it("runs one reindex at a time: one a schedule starts while another walks stops before changing anything", async () => {
    const alias = h.runtime.indices.memories;
    const before = (await h.runtime.es.count({ index: alias })).count;
    let firstId = '';
    let started: () => void = () => undefined;
    const walking = new Promise<void>((resolve) => (started = resolve));
    let release: () => void = () => undefined;
    stallCopy = { started, released: new Promise<void>((resolve) => (release = resolve)) };
    try {
      const first = await h.api('POST', '/v1/backfills', { key: h.operatorKey, body: { backfill: 'reindex' } });
      expect(first.status).toBe(202);
      firstId = first.body.id;
      await walking;
      const firstWorkflow = backfillWorkflowId('default', first.body.id);
      // The API refuses a second one, on demand or by a reindex schedule's trigger.
      expect((await h.api('POST', '/v1/backfills', { key: h.operatorKey, body: { backfill: 'reindex' } })).status).toBe(409);
      const schedule = await h.api('POST', '/v1/schedules', { key: h.operatorKey, body: { backfill: 'reindex', every: '365d', paused: true } });
      expect(schedule.status).toBe(201);
      const trigger = await h.api('POST', `/v1/schedules/${schedule.body.id}/trigger`, { key: h.operatorKey });
      expect([trigger.status, trigger.body.error?.message]).toEqual([409, expect.stringMatching(/reindex is already running/)]);
      await h.api('DELETE', `/v1/schedules/${schedule.body.id}`, { key: h.operatorKey });

      // A schedule's run comes at its time, asking no one: started here as Temporal starts it.
      const scheduledRun = `${schedule.body.id}-2026-11-24T03:00:00Z`;
      const run = await h.temporal.client.workflow.start('backfillWorkflow', {
        taskQueue: h.config.TEMPORAL_TASK_QUEUE,
        workflowId: backfillWorkflowId('default', scheduledRun),
        args: [toWorkflowInput('default', BackfillRequest.parse({ backfill: 'reindex' }))],
        typedSearchAttributes: [
          { key: TenantAttribute, value: 'default' },
          { key: JobKindAttribute, value: 'backfill:reindex' },
        ],
      });
      await expect(run.result()).rejects.toThrow();
      const refused = (await h.api('GET', `/v1/backfills/${scheduledRun}`, { key: h.operatorKey })).body;
      expect(refused.status).toBe('failed');
      expect(JSON.stringify(refused.errors)).toMatch(/another reindex \(backfill\/default\/bf_[0-9a-f]+\) is building .*-v\d+: one reindex runs at a time/);
      // What the first one builds is still its own, and still there.
      const target = (await h.api('GET', `/v1/backfills/${first.body.id}`, { key: h.operatorKey })).body.reindex.target as string;
      const mapping = await h.runtime.es.indices.getMapping({ index: target });
      expect(mapping[target]?.mappings._meta?.reindex_owner).toBe(firstWorkflow);
    } finally {
      stallCopy = undefined;
      release();
    }
    // The first one, released, completes as if alone.
    const completed = await waitFor('the first reindex to end', async () => {
      const progress = (await h.api('GET', `/v1/backfills/${firstId}`, { key: h.operatorKey })).body;
      return progress.status === 'running' ? undefined : progress;
    });
    expect(completed).toMatchObject({ status: 'completed', processed: before, reindex: { swapped: true } });
    expect((await h.runtime.es.count({ index: alias })).count).toBe(before);
  });
});
