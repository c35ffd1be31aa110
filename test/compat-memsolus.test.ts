import { refuseSecondBatchOnce } from './support/faults';
import { startHarness, type Harness } from './support/harness';

const WORKSPACE = '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f';

function ingestForm(fields: Record<string, string | string[]>, file?: { name: string; content: string | Buffer; type: string }) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) for (const item of [value].flat()) form.append(key, item);
  if (file) form.append('file', new Blob([file.content], { type: file.type }), file.name);
  return form;
}

describe('Memsolus surface (/compat/memsolus)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      // Small batches, so a long file has several; and a fault injected into extraction (not a test
      // double): a file whose options say "fail-batch-1" cannot extract its second batch.
      env: { BATCH_SIZE: '2' },
      wrapActivities: refuseSecondBatchOnce((request) => (request.metadata?.options as { test?: string } | undefined)?.test === 'fail-batch-1'),
    });
  });
  afterAll(async () => h?.close());
  const memsolusJobs: string[] = [];

  it('ingests an uploaded MARKDOWN file: PENDING job object, then COMPLETED with memories_created, searchable', async () => {
    const response = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm(
        { format: 'MARKDOWN', workspace_id: WORKSPACE, user_id: 'user-7', agent_id: 'agent-1', categories: ['travel', 'notes'], options: '{"chunking":"default"}' },
        { name: 'trip.md', content: '# Trip\n\nThe ferry to Hydra leaves Piraeus at 8am.\n\n## Packing\n\nBring a linen shirt.', type: 'text/markdown' },
      ),
    });
    expect(response.status).toBe(202);
    memsolusJobs.push(response.body.id);
    expect(response.body).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      format: 'MARKDOWN',
      workspace_id: WORKSPACE,
      user_id: 'user-7',
      agent_id: 'agent-1',
      source_url: null,
      categories: ['travel', 'notes'],
      status: 'PENDING',
      error: null,
      memories_created: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    await h.waitForJob('acme', response.body.id);
    const job = await h.api('GET', `/compat/memsolus/v1/ingest-jobs/${response.body.id}`);
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({ id: response.body.id, status: 'COMPLETED', workspace_id: WORKSPACE, user_id: 'user-7', categories: ['travel', 'notes'], error: null });
    expect(job.body.created_at).toBe(response.body.created_at);
    // The listing says the same (visibility's own start time is a few milliseconds later).
    const listed = await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page_size=100');
    expect(listed.body.data.find((entry: { id: string }) => entry.id === response.body.id)?.created_at).toBe(response.body.created_at);
    expect(job.body.memories_created).toBeGreaterThan(0);
    const found = await h.api('POST', '/v1/search', { body: { query: 'ferry Hydra Piraeus', mode: 'bm25', filters: { categories: ['travel'] } } });
    expect(found.body.results.length).toBeGreaterThan(0);
    expect((await h.api('GET', `/compat/memsolus/v1/ingest-jobs/${response.body.id}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('takes a file sent with its source_url (the file is ingested, the URL kept), any JSON in options, and an empty agent_id', async () => {
    const response = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm(
        { format: 'TXT', workspace_id: WORKSPACE, user_id: 'user-7', agent_id: '', source_url: 'http://169.254.169.254/never-fetched.txt', options: '["fast", 2]' },
        { name: 'harbour.txt', content: 'The harbourmaster of Naxos rings the bell at noon.', type: 'text/plain' },
      ),
    });
    expect(response.status).toBe(202);
    memsolusJobs.push(response.body.id);
    expect(response.body).toMatchObject({ format: 'TXT', agent_id: null, source_url: 'http://169.254.169.254/never-fetched.txt' });
    // Completed from the upload: the (refused) address was never fetched.
    expect((await h.waitForJob('acme', response.body.id)).status).toBe('completed');
    const found = await h.api('POST', '/v1/search', { body: { query: 'harbourmaster Naxos bell', mode: 'bm25', top_k: 1 } });
    expect(found.body.results[0]).toMatchObject({ provenance: { source_url: 'http://169.254.169.254/never-fetched.txt' }, metadata: { options: ['fast', 2] } });
    // A form that always sends the field sends it empty beside a file: absent, as for agent_id.
    const emptyUrl = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm({ format: 'TXT', workspace_id: WORKSPACE, user_id: 'user-7', source_url: '' }, { name: 'ferry.txt', content: 'The Naxos ferry leaves at dawn.', type: 'text/plain' }),
    });
    expect(emptyUrl.status).toBe(202);
    memsolusJobs.push(emptyUrl.body.id);
    expect(emptyUrl.body).toMatchObject({ source_url: null });
    expect((await h.waitForJob('acme', emptyUrl.body.id)).status).toBe('completed');
  });

  it('reports a job that completed with a batch left out as COMPLETED, with no error (the seed sets it for FAILED only)', async () => {
    const paragraph = (topic: string) => `${topic}. ${'The committee reviewed the figures, compared them with last year and agreed on the next steps for the team. '.repeat(14)}`;
    const content = ['Alpha harbour budget', 'Bravo tram schedule', 'Charlie museum opening', 'Delta ferry contract', 'Echo library hours', 'Foxtrot market permits'].map(paragraph).join('\n\n');
    const response = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm({ format: 'TXT', workspace_id: WORKSPACE, user_id: 'user-7', options: '{"test":"fail-batch-1"}' }, { name: 'minutes.txt', content, type: 'text/plain' }),
    });
    expect(response.status).toBe(202);
    memsolusJobs.push(response.body.id);
    const done = await h.waitForJob('acme', response.body.id);
    expect(done).toMatchObject({ status: 'completed', errors: [expect.objectContaining({ stage: 'extract' })] });
    const job = await h.api('GET', `/compat/memsolus/v1/ingest-jobs/${response.body.id}`);
    expect(job.body).toMatchObject({ status: 'COMPLETED', error: null, memories_created: done.counts.chunks - 2 });
  });

  it('reports a failed URL job as FAILED with its error', async () => {
    const response = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm({ format: 'URL', workspace_id: WORKSPACE, user_id: 'user-7', source_url: 'http://169.254.169.254/latest/meta-data' }),
    });
    expect(response.status).toBe(202);
    memsolusJobs.push(response.body.id);
    expect(response.body.source_url).toBe('http://169.254.169.254/latest/meta-data');
    await h.waitForJob('acme', response.body.id);
    const job = await h.api('GET', `/compat/memsolus/v1/ingest-jobs/${response.body.id}`);
    expect(job.body).toMatchObject({ status: 'FAILED', error: expect.any(String), format: 'URL' });
  });

  it('lists the Memsolus ingest jobs page by page (page_size ≤ 100): not the tenant\'s jobs from other surfaces, not other tenants\'', async () => {
    // The same tenant ingests through the native API too: those jobs are not Memsolus ingest jobs.
    const native = await h.api('POST', '/v1/documents', { body: { content: 'A note sent through the native API.' } });
    await h.waitForJob('acme', native.body.job_id);
    let page1: { data: { id: string }[]; total: number; page: number; page_size: number } = { data: [], total: 0, page: 0, page_size: 0 };
    for (let attempt = 0; attempt < 20 && page1.total < memsolusJobs.length; attempt++) {
      page1 = (await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page=1&page_size=1')).body;
      if (page1.total < memsolusJobs.length) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(page1).toMatchObject({ page: 1, page_size: 1, total: memsolusJobs.length });
    expect(page1.data).toHaveLength(1);
    const seen = [page1.data[0]!.id];
    for (let page = 2; page <= memsolusJobs.length; page++) {
      const next = (await h.api('GET', `/compat/memsolus/v1/ingest-jobs?page=${page}&page_size=1`)).body;
      expect(next.data).toHaveLength(1);
      expect(next.total).toBe(memsolusJobs.length);
      seen.push(next.data[0]!.id);
    }
    expect(seen.sort()).toEqual([...memsolusJobs].sort());
    const past = (await h.api('GET', `/compat/memsolus/v1/ingest-jobs?page=${memsolusJobs.length + 1}&page_size=1`)).body;
    expect(past).toMatchObject({ data: [], total: memsolusJobs.length });
    const all = (await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page_size=100')).body;
    expect(all.data.map((job: { id: string }) => job.id).sort()).toEqual([...memsolusJobs].sort());
    // Pages land where the full listing puts them (the jobs before are skipped in larger steps).
    const third = (await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page=3&page_size=1')).body;
    expect(third.data[0].id).toBe(all.data[2].id);
    // Offsets reach the first 10,000 jobs.
    const deep = await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page=101&page_size=100');
    expect(deep.status).toBe(400);
    expect(deep.body.error.message).toMatch(/first 10000 jobs/);
    // The native listing still sees every surface's jobs, and can ask for one surface.
    const nativeListing = (await h.api('GET', '/v1/jobs?page_size=100')).body.jobs.map((job: { job_id: string }) => job.job_id);
    expect(nativeListing).toEqual(expect.arrayContaining([native.body.job_id, ...memsolusJobs]));
    const bySurface = (await h.api('GET', '/v1/jobs?page_size=100&surface=native')).body.jobs.map((job: { job_id: string }) => job.job_id);
    expect(bySurface).toEqual([native.body.job_id]);
    // Nor is another surface's job a Memsolus ingest job when asked by id.
    expect((await h.api('GET', `/compat/memsolus/v1/ingest-jobs/${native.body.job_id}`)).status).toBe(404);
    expect((await h.api('GET', '/compat/memsolus/v1/ingest-jobs?page_size=101')).status).toBe(400);
    expect((await h.api('GET', '/compat/memsolus/v1/ingest-jobs', { key: h.keys.globex })).body.total).toBe(0);
  });

  it('enforces the seed limits: 413 over a format limit, 415 for unsupported files, 400 for bad fields', async () => {
    const base = { workspace_id: WORKSPACE, user_id: 'user-7' };
    const tooBig = await h.api('POST', '/compat/memsolus/v1/memories/ingest', { body: ingestForm({ ...base, format: 'JSON' }, { name: 'big.json', content: `"${'a'.repeat(5 * 1024 * 1024)}"`, type: 'application/json' }) });
    expect(tooBig.status).toBe(413);
    const unsupported = await h.api('POST', '/compat/memsolus/v1/memories/ingest', { body: ingestForm({ ...base, format: 'XLSX' }, { name: 'sheet.xlsx', content: 'PK', type: 'application/octet-stream' }) });
    expect(unsupported.status).toBe(400);
    const wrongType = await h.api('POST', '/compat/memsolus/v1/memories/ingest', { body: ingestForm({ ...base, format: 'PDF' }, { name: 'a.pdf', content: 'plain text', type: 'application/pdf' }) });
    expect(wrongType.status).toBe(415);
    const neither = await h.api('POST', '/compat/memsolus/v1/memories/ingest', { body: ingestForm({ ...base, format: 'TXT' }) });
    expect(neither.status).toBe(400);
    const manyCategories = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm({ ...base, format: 'TXT', categories: Array.from({ length: 21 }, (_, i) => `c${i}`) }, { name: 'a.txt', content: 'hello', type: 'text/plain' }),
    });
    expect(manyCategories.status).toBe(400);
    const longOptions = await h.api('POST', '/compat/memsolus/v1/memories/ingest', {
      body: ingestForm({ ...base, format: 'TXT', options: JSON.stringify({ x: 'y'.repeat(4100) }) }, { name: 'a.txt', content: 'hello', type: 'text/plain' }),
    });
    expect(longOptions.status).toBe(400);
    const badWorkspace = await h.api('POST', '/compat/memsolus/v1/memories/ingest', { body: ingestForm({ ...base, workspace_id: 'ws-1', format: 'TXT' }, { name: 'a.txt', content: 'hello', type: 'text/plain' }) });
    expect(badWorkspace.status).toBe(400);
    expect(badWorkspace.body.error.message).toMatch(/workspace_id/);
  });
  it("takes the key in x-api-key, as the vendor's own API client sends it", async () => {
    const listed = await h.api('GET', '/compat/memsolus/v1/ingest-jobs', { key: '', headers: { 'x-api-key': h.keys.acme } });
    expect(listed.status).toBe(200);
    expect((await h.api('GET', '/compat/memsolus/v1/ingest-jobs', { key: '', headers: { 'x-api-key': 'cairn_not_a_key' } })).status).toBe(401);
    // Only on this surface.
    expect((await h.api('GET', '/v1/jobs', { key: '', headers: { 'x-api-key': h.keys.acme } })).status).toBe(401);
  });
});
