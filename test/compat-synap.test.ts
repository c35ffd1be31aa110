import { nothingAcceptedStatus } from '../api/batch';
import { ingestionStatus } from '../api/compat/synap';
import { refuseSecondBatchOnce } from './support/faults';
import { startHarness, type Harness } from './support/harness';

describe('Synap surface (/compat/synap)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      // Small batches, so a long document has several; and a fault injected into extraction (not a
      // test double): a document whose metadata says "fail-batch-1" cannot extract its second batch.
      env: { BATCH_SIZE: '2' },
      // Once per source: a retry of the job extracts everything.
      wrapActivities: refuseSecondBatchOnce((request) => request.metadata?.test === 'fail-batch-1'),
    });
  });
  afterAll(async () => h?.close());

  const example = {
    content: 'User: I just switched our billing plan to annual.\nAssistant: Noted, your renewal is now every March.',
    document_type: 'ai-chat-conversation',
    document_id: 'ticket-8841',
    document_created_at: '2026-03-01T10:00:00Z',
    user_id: 'u-42',
    customer_id: 'cust-7',
    mode: 'fast',
    metadata: { channel: 'chat' },
  };

  it('creates a memory (201 queued), reports ingestion progress per stage, and rejects a duplicate document_id with 409', async () => {
    const created = await h.api('POST', '/compat/synap/v1/memories', { body: example });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ ingestion_id: expect.any(String), status: 'queued' });
    const duplicate = await h.api('POST', '/compat/synap/v1/memories', { body: example });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.code).toBe('conflict');

    await h.waitForJob('acme', created.body.ingestion_id);
    const status = await h.api('GET', `/compat/synap/v1/ingestions/${created.body.ingestion_id}`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ ingestion_id: created.body.ingestion_id, status: 'completed', errors: [] });
    expect(status.body.progress.extraction.status).toBe('completed');
    expect(status.body.progress.storage.status).toBe('completed');
    // The seed's four stages: extraction, categorization, entity resolution, storage.
    expect(status.body.progress).toMatchObject({ categorization: status.body.progress.extraction, entity_resolution: expect.objectContaining({ status: 'completed' }) });
    expect(status.body.memories_created).toBeGreaterThan(0);
    // After completion the source record also refuses it.
    expect((await h.api('POST', '/compat/synap/v1/memories', { body: example })).status).toBe(409);
    // Another tenant may use the same document_id.
    expect((await h.api('POST', '/compat/synap/v1/memories', { key: h.keys.globex, body: example })).status).toBe(201);
    expect((await h.api('GET', `/compat/synap/v1/ingestions/${created.body.ingestion_id}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('takes a document_id again once its source is deleted: one of two concurrent creates wins, and it is taken again after', async () => {
    const send = (content: string) => h.api('POST', '/compat/synap/v1/memories', { body: { content, document_id: 'handbook-3', user_id: 'u-9' } });
    const searchFor = async (query: string) =>
      (await h.api('POST', '/v1/search', { body: { query, mode: 'bm25', filters: { document_ids: ['handbook-3'] } } })).body.results.map((r: { text: string }) => r.text).join(' ');
    const first = await send('The Tromsø office closes at four on Fridays.');
    expect(first.status).toBe(201);
    const { source_id: sourceId } = (await h.waitForJob('acme', first.body.ingestion_id)) as { source_id: string };
    expect((await send('The Tromsø office closes at five on Fridays.')).status).toBe(409);

    const ingestions: string[] = [first.body.ingestion_id];
    for (const hour of ['five', 'six']) {
      expect((await h.api('DELETE', `/v1/sources/${sourceId}`)).status).toBe(200);
      const [a, b] = await Promise.all([send(`The Tromsø office closes at ${hour} on Fridays.`), send(`The Tromsø office closes at ${hour} on Fridays.`)]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const created = a.status === 201 ? a : b;
      expect(ingestions).not.toContain(created.body.ingestion_id);
      ingestions.push(created.body.ingestion_id);
      expect(await h.waitForJob('acme', created.body.ingestion_id)).toMatchObject({ status: 'completed', source_id: sourceId });
      expect(await searchFor('Tromsø office closes Fridays')).toContain(hour);
      expect((await send('The Tromsø office never closes.')).status).toBe(409);
    }
    expect(await searchFor('Tromsø office closes Fridays')).not.toMatch(/\bfour\b|\bfive\b/);
    // Each ingestion keeps its own status.
    for (const id of ingestions) expect((await h.api('GET', `/compat/synap/v1/ingestions/${id}`)).body.status).toBe('completed');
  });

  it('gets, updates and deletes a memory by mem_<hex> id within the tenant', async () => {
    const created = await h.api('POST', '/compat/synap/v1/memories', { body: { content: 'Priya leads the Atlas migration.', user_id: 'u-1', customer_id: 'c-1' } });
    await h.waitForJob('acme', created.body.ingestion_id);
    const found = await h.api('POST', '/v1/search', { body: { query: 'Priya Atlas migration', mode: 'bm25' } });
    const id = found.body.results.find((r: { provenance: { job_id: string } }) => r.provenance.job_id === created.body.ingestion_id).id as string;
    expect(id).toMatch(/^mem_[0-9a-f]+$/);
    const accepted = Date.now();

    const memory = await h.api('GET', `/compat/synap/v1/memories/${id}`);
    expect(memory.body).toMatchObject({
      id,
      type: expect.any(String),
      content: expect.stringContaining('Atlas'),
      confidence: expect.any(Number),
      entities: expect.any(Array),
      scope: { user_id: 'u-1', customer_id: 'c-1', client_id: 'acme' },
      // No document_created_at sent: "defaults to the current time".
      source: { ingestion_id: created.body.ingestion_id, document_type: 'document', document_created_at: expect.any(String) },
      updated_at: null,
    });
    expect(Math.abs(Date.parse(memory.body.source.document_created_at) - accepted)).toBeLessThan(60_000);
    expect((await h.api('GET', `/compat/synap/v1/memories/${id}`, { key: h.keys.globex })).status).toBe(404);

    const updated = await h.api('PATCH', `/compat/synap/v1/memories/${id}`, { body: { content: 'The migration finishes in June.', merge_strategy: 'append', confidence: 0.9, metadata: { reviewed: true } } });
    expect(updated.status).toBe(200);
    expect(updated.body.content).toMatch(/Atlas[\s\S]*June/);
    expect(updated.body).toMatchObject({ confidence: 0.9, metadata: { reviewed: true }, updated_at: expect.any(String) });
    expect((await h.api('PATCH', `/compat/synap/v1/memories/${id}`, { body: { content: 'x', merge_strategy: 'overwrite' } })).status).toBe(400);
    expect((await h.api('GET', '/compat/synap/v1/memories/not-a-memory-id')).status).toBe(400);

    expect((await h.api('DELETE', `/compat/synap/v1/memories/${id}`, { key: h.keys.globex })).status).toBe(404);
    const deleted = await h.api('DELETE', `/compat/synap/v1/memories/${id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeUndefined();
    expect((await h.api('GET', `/compat/synap/v1/memories/${id}`)).status).toBe(404);
  });

  it('batch-creates with per-index errors; fail_fast rejects the whole batch', async () => {
    const documents = [
      { content: 'Batch: the Oslo office opens at nine.', document_id: 'batch-1' },
      { document_type: 'document' },
      { content: 'Batch: the Bergen office opens at ten.', document_id: 'batch-1' },
      { content: 'Batch: the Tromsø office is closed on Fridays.', document_type: 'email' },
    ];
    const strict = await h.api('POST', '/compat/synap/v1/memories/batch', { body: { documents, fail_fast: true } });
    expect(strict.status).toBe(400);
    expect(strict.body.errors).toEqual([expect.objectContaining({ index: 1, code: 'validation_error', message: expect.stringMatching(/content/) })]);

    const lenient = await h.api('POST', '/compat/synap/v1/memories/batch', { body: { documents } });
    expect(lenient.status).toBe(201);
    expect(lenient.body.results.map((r: { index: number }) => r.index)).toEqual([0, 3]);
    expect(lenient.body.results.every((r: { status: string }) => r.status === 'queued')).toBe(true);
    expect(lenient.body.errors).toEqual([
      expect.objectContaining({ index: 1, code: 'validation_error' }),
      expect.objectContaining({ index: 2, code: 'conflict' }),
    ]);
    for (const result of lenient.body.results) expect((await h.waitForJob('acme', result.ingestion_id)).status).toBe('completed');
    // Nothing accepted: the items' common status (all duplicates → 409), not a blanket 400.
    const duplicates = await h.api('POST', '/compat/synap/v1/memories/batch', { body: { documents: [documents[0], documents[0]] } });
    expect(duplicates.status).toBe(409);
    expect(duplicates.body).toMatchObject({ results: [], errors: [{ index: 0, code: 'conflict' }, { index: 1, code: 'conflict' }] });
  });

  it('answers a batch that accepted nothing with the status its items share, 503 when a service was down', () => {
    expect(nothingAcceptedStatus([{ index: 0, code: 'validation_error', message: '' }, { index: 1, code: 'conflict', message: '' }])).toBe(400);
    expect(nothingAcceptedStatus([{ index: 0, code: 'conflict', message: '' }])).toBe(409);
    expect(nothingAcceptedStatus([{ index: 0, code: 'validation_error', message: '' }, { index: 1, code: 'upstream_failure', message: '' }])).toBe(503);
  });

  it('takes ISO 8601 timestamps in their usual forms, read as UTC when they carry no offset', async () => {
    const forms = { '2024-01-15T10:30:00': '2024-01-15T10:30:00.000Z', '2024-01-15T10:30Z': '2024-01-15T10:30:00.000Z', '2024-01-15T10:30:00+0100': '2024-01-15T09:30:00.000Z' };
    for (const [sent, stored] of Object.entries(forms)) {
      const created = await h.api('POST', '/compat/synap/v1/memories', { body: { content: `The Lofoten ferry timetable changed (${sent}).`, document_created_at: sent } });
      expect(created.status).toBe(201);
      expect((await h.waitForJob('acme', created.body.ingestion_id)).status).toBe('completed');
      const found = await h.api('POST', '/v1/search', { body: { query: `Lofoten ferry ${sent}`, mode: 'bm25', top_k: 1 } });
      expect(found.body.results[0].provenance.document_date).toBe(stored);
    }
    for (const notIso of ['last Tuesday', '2024-02-30', '2024-01-15T25:00:00Z']) {
      expect([notIso, (await h.api('POST', '/compat/synap/v1/memories', { body: { content: 'x', document_created_at: notIso } })).status]).toEqual([notIso, 400]);
    }
  });

  it('answers partial_success when one batch of a document cannot be extracted, with what the others yielded', async () => {
    const paragraph = (topic: string) => `${topic}. ${'The committee reviewed the figures, compared them with last year and agreed on the next steps for the team. '.repeat(14)}`;
    const topics = ['Alpha harbour budget', 'Bravo tram schedule', 'Charlie museum opening', 'Delta ferry contract', 'Echo library hours', 'Foxtrot market permits'];
    const created = await h.api('POST', '/compat/synap/v1/memories', { body: { content: topics.map(paragraph).join('\n\n'), metadata: { test: 'fail-batch-1' } } });
    expect(created.status).toBe(201);
    const done = await h.waitForJob('acme', created.body.ingestion_id);
    expect(done.status).toBe('completed');
    expect(done.counts.chunks).toBeGreaterThan(4);
    const status = await h.api('GET', `/compat/synap/v1/ingestions/${created.body.ingestion_id}`);
    expect(status.body).toMatchObject({
      status: 'partial_success',
      errors: [{ stage: 'extraction', code: 'injected', message: expect.stringMatching(/^chunks 2–3 left out: the extractor refused this batch/) }],
    });
    // Memories from every chunk but the two of the failed batch.
    expect(status.body.memories_created).toBe(done.counts.chunks - 2);
    const { hits } = await h.runtime.es.search<{ provenance: { chunk_index: number } }>({
      index: h.runtime.indices.memories,
      size: 100,
      query: { term: { 'provenance.job_id': created.body.ingestion_id } },
    });
    const chunks = hits.hits.map((hit) => hit._source!.provenance.chunk_index).sort((a, b) => a - b);
    expect(chunks).not.toContain(2);
    expect(chunks).not.toContain(3);
    expect(chunks).toContain(0);
    expect(chunks).toContain(4);

    // The partial ingestion is repaired by retrying it (native API): everything is extracted this time.
    const retried = await h.api('POST', `/v1/jobs/${created.body.ingestion_id}/retry`);
    expect(retried.status).toBe(202);
    expect(await h.waitForJob('acme', retried.body.job_id)).toMatchObject({ status: 'completed', errors: [], memories_created: done.counts.chunks });
    expect((await h.api('GET', `/compat/synap/v1/ingestions/${retried.body.job_id}`)).body.status).toBe('completed');
  });

  it('names stages in errors as in progress', async () => {
    const created = await h.api('POST', '/compat/synap/v1/memories', { body: { content: '  \n\t  ' } });
    expect(created.status).toBe(201);
    expect((await h.waitForJob('acme', created.body.ingestion_id)).status).toBe('failed');
    const status = await h.api('GET', `/compat/synap/v1/ingestions/${created.body.ingestion_id}`);
    expect(status.body).toMatchObject({ status: 'failed', errors: [{ stage: 'parsing', message: expect.stringMatching(/no text/) }] });
    expect(Object.keys(status.body.progress)).toContain('parsing');
    // Stage states in the status's own words: the failed stage, and the ones it never reached skipped.
    expect(status.body.progress).toMatchObject({ parsing: { status: 'failed' }, chunking: { status: 'skipped' }, storage: { status: 'skipped' } });
    // While the ingestion runs, a stage under way reads `processing` as the whole does, and the next ones `queued`.
    const progress = (await h.jobs.progress('acme', created.body.ingestion_id))!;
    const midway = ingestionStatus({ ...progress, status: 'running', errors: [], stages: { ...progress.stages, parse: { ...progress.stages.parse!, state: 'running' } } });
    expect(midway).toMatchObject({ status: 'processing', progress: { parsing: { status: 'processing' }, chunking: { status: 'queued' } } });
  });
});
