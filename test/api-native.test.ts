import iconv from 'iconv-lite';
import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { toErrorResponse } from '../api/errors';
import { IngestJobs } from '../lib/jobs';
import { Entity } from '../lib/entities/entity';
import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { makePdf } from './fixtures/documents';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

/** BM25 recall through the public search endpoint: what a user would do to check content is searchable. */
async function search(h: Harness, query: string, key?: string) {
  const response = await h.api('POST', '/v1/search', { key, body: { query, mode: 'bm25', top_k: 20 } });
  expect(response.status).toBe(200);
  return response.body.results as { id: string; text: string; provenance: { job_id: string; source_id: string } }[];
}

function upload(name: string, content: string | Buffer, type: string, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  form.append('file', new Blob([content], { type }), name);
  return form;
}

describe('native v1 API', () => {
  let h: Harness;
  const failedOnce = new Set<string>();
  beforeAll(async () => {
    h = await startHarness({
      // A fault injected into the fetch stage (not a test double of Temporal or Elasticsearch):
      // "fail-once" sources fail their first job, "slow" sources wait so they can be cancelled.
      wrapActivities: (activities) => ({
        ...activities,
        fetchSource: async (input) => {
          const marker = input.request.metadata?.test;
          if (marker === 'fail-once' && !failedOnce.has(input.sourceId)) {
            failedOnce.add(input.sourceId);
            throw ApplicationFailure.nonRetryable('injected failure', 'injected');
          }
          if (marker === 'slow') await new Promise((resolve) => setTimeout(resolve, 4000));
          return activities.fetchSource(input);
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  it('ingests an uploaded text file end to end and makes it searchable', async () => {
    const accepted = await h.api('POST', '/v1/files', { body: upload('notes.txt', 'The lighthouse keeper logs the foghorn schedule every evening.', 'text/plain') });
    expect(accepted.status).toBe(202);
    expect(accepted.body.format).toBe('TXT');
    const done = await h.waitForJob('acme', accepted.body.job_id);
    expect(done.status).toBe('completed');
    expect(done.kind).toBe('file');
    // Of the job's blobs only its input stays: what it derived (parsed, chunks, batches) is dropped at its end.
    const blobs = await h.runtime.blobs.list(`acme/jobs/${accepted.body.job_id}`);
    expect(blobs.map((key) => key.split('/').pop())).toEqual(['raw']);
    const hits = await search(h, 'lighthouse foghorn');
    expect(hits.some((hit) => hit.provenance.job_id === accepted.body.job_id)).toBe(true);
    // The other tenant's search does not see it.
    expect((await search(h, 'lighthouse foghorn', h.keys.globex)).length).toBe(0);
  });

  it('reads a JSON body in the UTF-16 it declares', async () => {
    const body = Buffer.from(JSON.stringify({ content: '我们家的孩子在学校学习汉字。'.repeat(20) }), 'utf16le');
    const response = await fetch(`${h.baseUrl}/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': 'application/json; charset=utf-16le' }, body });
    expect(response.status).toBe(202);
  });

  it('reads text in other encodings: a JSON body that is not UTF-8 is refused, not read with its letters lost; an undeclared Cyrillic file is read as such, a non-ASCII file name is kept', async () => {
    const latin1 = Buffer.from(JSON.stringify({ content: 'Le café de René ouvre à sept heures.' }), 'latin1');
    const post = (type: string) => fetch(`${h.baseUrl}/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': type }, body: latin1 });
    const refused = await post('application/json');
    expect([refused.status, ((await refused.json()) as any).error.message]).toEqual([400, expect.stringMatching(/not valid UTF-8: JSON is sent in UTF-8/)]);
    // An upload's part charset does not reach Cairn (multer drops it): the bytes say windows-1251.
    const text = 'Анна переехала в Казань в марте и работает учительницей музыки в местной школе.';
    const accepted = await h.api('POST', '/v1/files', { body: upload('Zürich – 東京 notes.txt', iconv.encode(text, 'windows-1251'), 'text/plain') });
    expect(accepted.status).toBe(202);
    const job = await h.waitForJob('acme', accepted.body.job_id);
    expect(job.status).toBe('completed');
    expect((await h.api('GET', `/v1/sources/${job.source_id}`)).body.file_name).toBe('Zürich – 東京 notes.txt');
    expect((await search(h, 'Казань')).map((hit) => hit.text)).toContain(text);
  });

  it('refuses unsupported types with 415 and files over the format limit with 413', async () => {
    const image = await h.api('POST', '/v1/files', { body: upload('photo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'image/png') });
    expect(image.status).toBe(415);
    const fakePdf = await h.api('POST', '/v1/files', { body: upload('report.pdf', 'not really a pdf', 'application/pdf') });
    expect(fakePdf.status).toBe(415);
    const big = await h.api('POST', '/v1/files', { body: upload('big.txt', 'x'.repeat(5 * 1024 * 1024 + 10), 'text/plain') });
    expect(big.status).toBe(413);
    // A body in an encoding or charset the API cannot read: 415 as such.
    for (const headers of [{ 'content-type': 'application/json', 'content-encoding': 'compress' }, { 'content-type': 'application/json; charset=klingon' }] as Record<string, string>[]) {
      const unreadable = await h.api('POST', '/v1/documents', { body: '{"content":"hello"}', headers });
      expect([JSON.stringify(headers), unreadable.status, unreadable.body.error.code]).toEqual([JSON.stringify(headers), 415, 'unsupported_media_type']);
    }
    // A PDF declared TXT is answered, and recorded, as the PDF its bytes say it is.
    const pdf = await h.api('POST', '/v1/files', { body: upload('minutes.txt', Buffer.from(await makePdf([['The harbour board met on Tuesday.']])), 'text/plain', { format: 'TXT' }) });
    expect([pdf.status, pdf.body.format]).toEqual([202, 'PDF']);
    expect((await h.waitForJob('acme', pdf.body.job_id)).format).toBe('PDF');
    const notMultipart = await h.api('POST', '/v1/files', { body: { content: 'hi' } });
    expect(notMultipart.status).toBe(415);
    // A JSON route sent another type: 415 naming it, not a 400 about unread fields.
    const notJson = await h.api('POST', '/v1/documents', { body: 'content=hello', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(notJson.status).toBe(415);
    expect(notJson.body.error.message).toMatch(/application\/json, not application\/x-www-form-urlencoded/);
    // JSON content over its format's limit is refused when sent, not accepted and failed later.
    const bigText = await h.api('POST', '/v1/documents', { body: { content: 'x'.repeat(5 * 1024 * 1024 + 10), format: 'TXT' } });
    expect(bigText.status).toBe(413);
    expect(bigText.body.error).toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/over the 5242880 byte limit/) });
    // A scope field sent beside `scope` instead of in it would leave the memories unscoped: a 400 naming it, not dropped.
    const misplaced = await h.api('POST', '/v1/conversations', { body: { messages: [{ role: 'user', content: 'I live in Lisbon.' }], user_id: 'nina' } });
    expect(misplaced.status).toBe(400);
    expect(misplaced.body.error.message).toMatch(/user_id/);
    expect((await h.api('POST', '/v1/documents', { body: { content: 'Hello.', scope: { userid: 'nina' } } })).status).toBe(400);
  });

  it('validates URL ingests before starting anything', async () => {
    expect((await h.api('POST', '/v1/urls', { body: { url: 'ftp://example.com/file' } })).status).toBe(400);
    const accepted = await h.api('POST', '/v1/urls', { body: { url: 'http://127.0.0.1:9/private' } });
    expect(accepted.status).toBe(202);
    // Loopback is refused by the fetch stage: the job fails with a reason instead of fetching it.
    const done = await h.waitForJob('acme', accepted.body.job_id);
    expect(done.status).toBe('failed');
    expect(done.errors[0]?.message).toBeTruthy();
  });

  it('batches with per-index errors, and fail_fast rejects the whole batch', async () => {
    const items = [
      { type: 'document', content: 'Batch item one about tulips.' },
      { type: 'document' },
      { type: 'conversation', messages: [{ role: 'user', content: 'Batch conversation about orchids.' }] },
    ];
    const strict = await h.api('POST', '/v1/batch', { body: { items, fail_fast: true } });
    expect(strict.status).toBe(400);
    expect(strict.body.errors).toEqual([expect.objectContaining({ index: 1, code: 'validation_error' })]);
    const lenient = await h.api('POST', '/v1/batch', { body: { items } });
    expect(lenient.status).toBe(202);
    expect(lenient.body.results.map((r: { index: number }) => r.index)).toEqual([0, 2]);
    expect(lenient.body.errors).toEqual([expect.objectContaining({ index: 1, message: expect.stringMatching(/content/) })]);
    for (const result of lenient.body.results) expect((await h.waitForJob('acme', result.job_id)).status).toBe('completed');
  });

  it('lists jobs from Temporal visibility, filtered and confined to the tenant', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Listing check about kestrels.', format: 'MARKDOWN', scope: { user_id: 'kestrel-watcher', session_id: 'dawn' } } });
    await h.waitForJob('acme', accepted.body.job_id);
    // The job's scope as the API writes it everywhere: snake_case, only what was sent.
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`)).body.scope).toEqual({ user_id: 'kestrel-watcher', session_id: 'dawn' });
    let listed: { job_id: string; status: string; format: string }[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const response = await h.api('GET', '/v1/jobs?status=completed&format=MARKDOWN&page_size=50');
      expect(response.status).toBe(200);
      listed = response.body.jobs;
      if (listed.some((job) => job.job_id === accepted.body.job_id)) break;
      await new Promise((resolve) => setTimeout(resolve, 250)); // visibility is eventually consistent
    }
    const job = listed.find((entry) => entry.job_id === accepted.body.job_id);
    expect(job).toMatchObject({ status: 'completed', format: 'MARKDOWN', surface: 'native', memories_created: expect.any(Number), scope: { user_id: 'kestrel-watcher', session_id: 'dawn' } });
    // The same times as the job's own status.
    const status = (await h.api('GET', `/v1/jobs/${accepted.body.job_id}`)).body;
    expect(job).toMatchObject({ created_at: status.created_at, finished_at: status.finished_at, updated_at: status.updated_at });
    expect(listed.every((entry) => entry.status === 'completed' && entry.format === 'MARKDOWN')).toBe(true);
    const paged = await h.api('GET', '/v1/jobs?page_size=1');
    expect(paged.body.jobs).toHaveLength(1);
    expect(paged.body.next_page_token).toEqual(expect.any(String));
    const next = await h.api('GET', `/v1/jobs?page_size=1&page_token=${paged.body.next_page_token}`);
    expect(next.status).toBe(200);
    expect(next.body.jobs[0]?.job_id).not.toBe(paged.body.jobs[0].job_id);
    // A token continues only the listing it came from: not another tenant's, not other filters', not a cut one.
    const token = paged.body.next_page_token as string;
    expect((await h.api('GET', `/v1/jobs?page_size=1&page_token=${token}`, { key: h.keys.globex })).status).toBe(400);
    expect((await h.api('GET', `/v1/jobs?page_size=1&status=failed&page_token=${token}`)).status).toBe(400);
    expect((await h.api('GET', `/v1/jobs?page_size=1&page_token=${token.slice(0, -3)}`)).status).toBe(400);
    const other = await h.api('GET', '/v1/jobs?page_size=100', { key: h.keys.globex });
    expect(other.body.jobs.some((entry: { job_id: string }) => entry.job_id === accepted.body.job_id)).toBe(false);
    expect((await h.api('GET', '/v1/jobs?status=bogus')).status).toBe(400);
    // A surface is a name, not text for the visibility query: a NUL there once ended Temporal's SQL (503).
    const nul = await h.api('GET', '/v1/jobs?surface=%00');
    expect(nul.status).toBe(400);
    expect(nul.body.error.message).toContain('surface');
  });

  it('cancels a running job and retries a failed one', async () => {
    const slow = await h.api('POST', '/v1/documents', { body: { content: 'A slow document.', metadata: { test: 'slow' } } });
    expect((await h.api('POST', `/v1/jobs/${slow.body.job_id}/cancel`, { key: h.keys.globex })).status).toBe(404);
    const cancelled = await h.api('POST', `/v1/jobs/${slow.body.job_id}/cancel`);
    expect(cancelled.status).toBe(202);
    const afterCancel = await h.waitForJob('acme', slow.body.job_id);
    expect(afterCancel.status).toBe('cancelled');
    expect((await h.api('POST', `/v1/jobs/${slow.body.job_id}/cancel`)).status).toBe(409);

    const failing = await h.api('POST', '/v1/documents', { body: { content: 'Retry me: the heron nests by the weir.', metadata: { test: 'fail-once' } } });
    const failed = await h.waitForJob('acme', failing.body.job_id);
    expect(failed.status).toBe('failed');
    expect(failed.errors[0]).toMatchObject({ stage: 'fetch', message: expect.stringMatching(/injected/) });
    expect((await h.api('POST', `/v1/jobs/${failing.body.job_id}/retry`, { key: h.keys.globex })).status).toBe(404);
    const retried = await h.api('POST', `/v1/jobs/${failing.body.job_id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body.retry_of).toBe(failing.body.job_id);
    // The same failed job retried again while (or after) its retry runs: refused, no second pipeline.
    const twice = await h.api('POST', `/v1/jobs/${failing.body.job_id}/retry`);
    expect(twice.status).toBe(409);
    expect(twice.body.error.message).toContain(retried.body.job_id);
    expect((await h.waitForJob('acme', retried.body.job_id)).status).toBe('completed');
    expect((await h.api('POST', `/v1/jobs/${failing.body.job_id}/retry`)).status).toBe(409);
    expect((await search(h, 'heron weir')).some((hit) => hit.provenance.job_id === retried.body.job_id)).toBe(true);
    // A completed job is not retried.
    expect((await h.api('POST', `/v1/jobs/${retried.body.job_id}/retry`)).status).toBe(409);
  });

  it('a Temporal namespace that does not exist is an outage (503 naming it), not an unknown job (404)', async () => {
    const elsewhere = new IngestJobs(new Client({ connection: h.temporal.connection, namespace: 'cairn-no-such-namespace' }), h.runtime.blobs, h.config, h.runtime.es);
    const jobId = randomUUID();
    for (const read of [() => elsewhere.progress('acme', jobId), () => elsewhere.cancel('acme', jobId)]) {
      const failure = await read().then(() => undefined, (error: unknown) => error);
      expect(toErrorResponse(failure)).toMatchObject({ status: 503, body: { error: { message: expect.stringMatching(/namespace/i) } } });
    }
    // The same read against the configured namespace: an unknown job.
    expect(await h.jobs.progress('acme', jobId)).toBeUndefined();
  });

  it('answers a finished job from its summary, with no workflow query, in the same shape as an open job\'s query', async () => {
    // A client that counts the queries it sends: a finished job must not need one (a query on a closed
    // workflow replays its whole history on a worker, and hangs when none runs).
    let queries = 0;
    const counting = new Client({
      connection: h.temporal.connection,
      namespace: h.config.TEMPORAL_NAMESPACE,
      interceptors: { workflow: [{ query: (input, next) => (queries++, next(input)) }] },
    });
    const jobs = new IngestJobs(counting, h.runtime.blobs, h.config, h.runtime.es);

    const slow = await h.api('POST', '/v1/documents', { body: { content: 'The otter dens under the old mill.', metadata: { test: 'slow' } } });
    // The slow stage runs as a local activity inside one workflow task, which holds the query back:
    // past its budget the poll answers "running" from the job's input rather than hanging for 4 s.
    // (The workflow itself would say stage "fetch"; the input-based answer knows no stage yet.)
    const running = await jobs.progress('acme', slow.body.job_id);
    expect(running).toMatchObject({ status: 'running', stage: null, job_id: slow.body.job_id, source_id: slow.body.source_id });
    expect(queries).toBe(1);

    await h.waitForJob('acme', slow.body.job_id);
    queries = 0;
    const fromSummary = await jobs.progress('acme', slow.body.job_id);
    expect(queries).toBe(0);
    expect(fromSummary).toMatchObject({ status: 'completed', memories_created: expect.any(Number) });
    const answer = await h.api('GET', `/v1/jobs/${slow.body.job_id}`);
    expect(answer.body).toEqual(fromSummary);
    // Field for field what the workflow itself answers (asked here the slow way, on purpose).
    const queried = await h.jobs.handle('acme', slow.body.job_id).query('status');
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(queried)));

    // A closed run whose summary is gone answers from its result, without a query reaching a worker.
    await h.runtime.es.delete({ index: h.runtime.indices.jobs, id: `acme:${slow.body.job_id}`, refresh: 'wait_for' });
    expect(await jobs.progress('acme', slow.body.job_id)).toEqual(fromSummary);

    // Terminated from outside (no summary written): failed, with the reason, in the same shape.
    const doomed = await h.api('POST', '/v1/documents', { body: { content: 'A document that never finishes.', metadata: { test: 'slow' } } });
    await h.jobs.handle('acme', doomed.body.job_id).terminate('operator stopped it');
    const terminated = await h.api('GET', `/v1/jobs/${doomed.body.job_id}`);
    expect(terminated.status).toBe(200);
    expect(terminated.body).toMatchObject({ job_id: doomed.body.job_id, status: 'failed', errors: [{ stage: 'workflow', code: 'terminated' }] });
    expect(Object.keys(terminated.body).sort()).toEqual(Object.keys(answer.body).filter((key) => key !== 'document_id').sort());
    // Finished when the workflow closed, as Temporal recorded it.
    const { closeTime } = await h.jobs.handle('acme', doomed.body.job_id).describe();
    expect(terminated.body.finished_at).toBe(closeTime!.toISOString());
    // Listed as failed, and found when failed jobs are asked for (it never wrote a status of its own).
    const failedIds = async () => (await h.api('GET', '/v1/jobs?status=failed&page_size=100')).body.jobs.map((job: { job_id: string }) => job.job_id) as string[];
    await waitFor('the terminated job among the failed', async () => ((await failedIds()).includes(doomed.body.job_id) ? true : undefined), { timeoutMs: 15_000 });
    const open = (await h.api('GET', '/v1/jobs?status=queued&page_size=100')).body.jobs.map((job: { job_id: string }) => job.job_id);
    expect(open).not.toContain(doomed.body.job_id);
  });

  it('answers queued, not running, for a job no worker has taken', async () => {
    // A queue no worker polls: the status query cannot be answered, and no task was ever started.
    const idleQueue = `${h.config.TEMPORAL_TASK_QUEUE}-idle`;
    const idle = new IngestJobs(h.temporal.client, h.runtime.blobs, { ...h.config, TEMPORAL_TASK_QUEUE: idleQueue }, h.runtime.es);
    try {
      const started = await idle.start({ tenant: 'acme', kind: 'document', format: 'TXT', content: 'Nobody is polling for this one.' });
      expect(await idle.progress('acme', started.jobId)).toMatchObject({ job_id: started.jobId, status: 'queued', stage: null });
    } finally {
      await deleteTaskQueueWorkflows(h.temporal.client, idleQueue);
    }
  });

  it('answers a job Temporal no longer knows from the stored summary', async () => {
    // A real job's summary, filed under an id Temporal never ran (as after its history was deleted).
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Ines keeps the spare keys in the blue drawer.' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const written = await h.runtime.es.get<Record<string, unknown>>({ index: h.runtime.indices.jobs, id: `acme:${accepted.body.job_id}` });
    const jobId = '00000000-0000-4000-8000-00000000abcd';
    await h.runtime.es.index({
      index: h.runtime.indices.jobs,
      id: `acme:${jobId}`,
      document: { ...written._source, job_id: jobId },
      refresh: 'wait_for',
    });
    const answer = await h.api('GET', `/v1/jobs/${jobId}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ job_id: jobId, status: 'completed', memories_created: 1, source_id: accepted.body.source_id });
    expect((await h.api('GET', `/v1/jobs/${jobId}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('gets, updates (replace, append, smart-merge) and deletes memories within the tenant', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Maya prefers green tea in the morning.' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const [hit] = (await search(h, 'Maya green tea')).filter((result) => result.provenance.job_id === accepted.body.job_id);
    expect(hit).toBeDefined();
    const id = hit!.id;

    const got = await h.api('GET', `/v1/memories/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.text).toContain('green tea');
    expect(got.body.embedding).toBeUndefined();
    expect((await h.api('GET', `/v1/memories/${id}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('PATCH', `/v1/memories/${id}`, { key: h.keys.globex, body: { content: 'hijack' } })).status).toBe(404);
    expect((await h.api('DELETE', `/v1/memories/${id}`, { key: h.keys.globex })).status).toBe(404);

    const appended = await h.api('PATCH', `/v1/memories/${id}`, { body: { content: 'She takes it without sugar.', merge_strategy: 'append' } });
    expect(appended.status).toBe(200);
    expect(appended.body.text).toMatch(/green tea[\s\S]*without sugar/);
    expect(appended.body.updated_at).toEqual(expect.any(String));
    // The same append again (a retried call) adds nothing; a word the text merely contains still appends.
    const repeated = await h.api('PATCH', `/v1/memories/${id}`, { body: { content: 'She takes it without sugar.', merge_strategy: 'append' } });
    expect(repeated.body.text).toBe(appended.body.text);
    const word = await h.api('PATCH', `/v1/memories/${id}`, { body: { content: 'sugar.', merge_strategy: 'append' } });
    expect(word.body.text).toBe(`${appended.body.text}\nsugar.`);

    const merged = await h.api('PATCH', `/v1/memories/${id}`, { body: { content: 'Maya prefers black coffee in the morning.', merge_strategy: 'smart-merge', metadata: { edited: true } } });
    expect(merged.body.text).toContain('black coffee');
    expect(merged.body.text).toContain('without sugar');
    expect(merged.body.text).not.toContain('green tea');
    expect(merged.body.metadata).toMatchObject({ edited: true });

    const replaced = await h.api('PATCH', `/v1/memories/${id}`, { body: { content: 'Maya drinks water.', confidence: 0.5 } });
    expect(replaced.body).toMatchObject({ text: 'Maya drinks water.', confidence: 0.5 });
    expect((await search(h, 'Maya drinks water')).some((result) => result.id === id)).toBe(true);
    expect((await h.api('PATCH', `/v1/memories/${id}`, { body: { merge_strategy: 'append' } })).status).toBe(400);

    expect((await h.api('DELETE', `/v1/memories/${id}`)).status).toBe(204);
    expect((await h.api('GET', `/v1/memories/${id}`)).status).toBe(404);
  });

  it('edits of one memory at the same time each apply to what the others left: none is lost, none refused', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'The choir rehearses on Tuesdays.' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const [hit] = (await search(h, 'choir rehearses Tuesdays')).filter((result) => result.provenance.job_id === accepted.body.job_id);
    const lines = ['Alto parts are new.', 'Bring water.', 'Doors open at six.', 'The hall is cold.'];
    const answers = await Promise.all(lines.map((content) => h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content, merge_strategy: 'append' } })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    const text = (await h.api('GET', `/v1/memories/${hit!.id}`)).body.text as string;
    for (const line of ['The choir rehearses on Tuesdays.', ...lines]) expect(text).toContain(line);
    // A memory deleted while an edit of it runs: the edit answers 404, not a conflict to retry.
    const [deleted, edited] = await Promise.all([
      h.api('DELETE', `/v1/memories/${hit!.id}`),
      h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content: 'Late line.', merge_strategy: 'append' } }),
    ]);
    expect(deleted.status).toBe(204);
    expect([200, 404]).toContain(edited.status);
    expect((await h.api('GET', `/v1/memories/${hit!.id}`)).status).toBe(404);
  });

  it('reads an edited memory\'s type, dates and entities again from its new text', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'I love the green tea that Ingrid Bergstrom brews.', document_date: '2024-05-10' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const [hit] = (await search(h, 'Ingrid green tea')).filter((result) => result.provenance.job_id === accepted.body.job_id);
    const before = (await h.api('GET', `/v1/memories/${hit!.id}`)).body;
    expect(before).toMatchObject({ type: 'preference', entities: [expect.objectContaining({ name: 'Ingrid Bergstrom', type: 'person' })] });
    expect(before.event_dates).toBeUndefined();

    // "Yesterday" counts from the document's date, as at ingestion.
    const edited = await h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content: 'Yesterday Bob Smith moved to Rome.' } });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ type: 'temporal_event', event_dates: ['2024-05-09'] });
    const names = edited.body.entities.map((entity: { name: string }) => entity.name);
    expect(names).toContain('Bob Smith');
    expect(names).not.toContain('Ingrid Bergstrom');
    // The memory is found through its new entity, no longer through the old one, and by its new date.
    const bob = edited.body.entities.find((entity: { name: string }) => entity.name === 'Bob Smith');
    const ingrid = before.entities[0];
    const byEntity = async (entityId: string) =>
      (await h.api('POST', '/v1/search', { body: { query: 'moved', mode: 'bm25', filters: { entity_ids: [entityId] } } })).body.results.map((result: { id: string }) => result.id);
    expect(await byEntity(bob.id)).toContain(hit!.id);
    expect(await byEntity(ingrid.id)).not.toContain(hit!.id);
    const onDay = await h.api('POST', '/v1/search', { body: { query: 'Rome', mode: 'bm25', filters: { occurred_after: '2024-05-09T00:00:00Z', occurred_before: '2024-05-09T23:59:59Z' } } });
    expect(onDay.body.results.map((result: { id: string }) => result.id)).toContain(hit!.id);
    // A confidence given with the edit is the one kept.
    const rated = await h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content: 'We love the trams Bob Smith drives in Rome.', confidence: 0.3 } });
    expect(rated.body).toMatchObject({ type: 'preference', confidence: 0.3 });
    expect(rated.body.event_dates).toBeUndefined();
  });

  it('reads an edited memory again in the mode its source was ingested in', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'I love the black coffee that Ingrid Bergstrom roasts.', document_date: '2024-05-10', mode: 'fast' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const [hit] = (await search(h, 'Ingrid black coffee')).filter((result) => result.provenance.job_id === accepted.body.job_id);
    // The fast mode names no entities in a document (no part-of-speech parse, no speakers)…
    expect((await h.api('GET', `/v1/memories/${hit!.id}`)).body.entities ?? []).toEqual([]);
    // …nor in its edited text, where the full mode would find Bob Smith and Rome (the test above).
    const edited = await h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content: 'Yesterday Bob Smith moved to Rome.' } });
    expect(edited.status).toBe(200);
    expect(edited.body.entities ?? []).toEqual([]);
    expect(edited.body).toMatchObject({ text: 'Yesterday Bob Smith moved to Rome.', event_dates: ['2024-05-09'] });
  });

  it('keeps an edited memory, and every memory\'s created_at, when the same content is ingested again', async () => {
    const body = { content: 'The orchard keeper grafts apple trees in February.', format: 'TXT', document_id: 'orchard-notes' };
    const first = await h.api('POST', '/v1/documents', { body });
    await h.waitForJob('acme', first.body.job_id);
    const [hit] = (await search(h, 'orchard grafts apple')).filter((result) => result.provenance.job_id === first.body.job_id);
    const before = (await h.api('GET', `/v1/memories/${hit!.id}`)).body;
    expect((await h.api('PATCH', `/v1/memories/${hit!.id}`, { body: { content: 'The orchard keeper grafts pear trees in March.' } })).status).toBe(200);
    const again = await h.api('POST', '/v1/documents', { body });
    expect((await h.waitForJob('acme', again.body.job_id)).status).toBe('completed');
    const after = (await h.api('GET', `/v1/memories/${hit!.id}`)).body;
    expect(after).toMatchObject({ text: 'The orchard keeper grafts pear trees in March.', created_at: before.created_at, updated_at: expect.any(String) });
  });

  it('keeps a deleted memory deleted when the same content is ingested again, until its source is deleted', async () => {
    const body = { content: 'The beekeeper moves the hives to the heather moor in August.', format: 'TXT', document_id: 'hive-notes' };
    const first = await h.api('POST', '/v1/documents', { body });
    expect((await h.waitForJob('acme', first.body.job_id)).memories_created).toBe(1);
    const [hit] = (await search(h, 'beekeeper hives heather')).filter((result) => result.provenance.job_id === first.body.job_id);
    expect((await h.api('DELETE', `/v1/memories/${hit!.id}`)).status).toBe(204);

    // Sent again: the same memory id, which the deletion keeps out.
    const again = await h.api('POST', '/v1/documents', { body });
    expect(await h.waitForJob('acme', again.body.job_id)).toMatchObject({ status: 'completed', memories_created: 0 });
    expect((await h.api('GET', `/v1/memories/${hit!.id}`)).status).toBe(404);
    expect((await search(h, 'beekeeper hives heather')).some((result) => result.id === hit!.id)).toBe(false);

    // A deleted source takes its tombstones with it: sent once more, it is new again.
    expect((await h.api('DELETE', `/v1/sources/${first.body.source_id}`)).status).toBe(200);
    const fresh = await h.api('POST', '/v1/documents', { body });
    expect(await h.waitForJob('acme', fresh.body.job_id)).toMatchObject({ status: 'completed', memories_created: 1 });
    expect((await h.api('GET', `/v1/memories/${hit!.id}`)).status).toBe(200);
  });

  it('replaces every memory of a conversation sent again with no message in common', async () => {
    const sent = async (messages: { role: string; content: string }[]) => {
      const answer = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'kiln-chat', messages } });
      await h.waitForJob('acme', answer.body.job_id);
      return answer.body;
    };
    const first = await sent([{ role: 'user', content: 'The kiln reaches its heat by noon.' }, { role: 'assistant', content: 'Noted about the kiln.' }]);
    const again = await sent([{ role: 'user', content: 'The otters came back to the river.' }]);
    expect(again).toMatchObject({ messages_added: 1, messages_unchanged: 0, memories_replaced: 2 });
    const { memories } = (await h.api('POST', '/v1/memories/list', { body: { filters: { source_ids: [first.source_id] } } })).body;
    expect(memories.map((memory: { text: string }) => memory.text)).toEqual(['user: The otters came back to the river.']);
  });

  it('keeps a memory edited through the API when its conversation is read again under a new session date', async () => {
    const messages = [
      { role: 'user', name: 'Tove', content: 'We married in Bergen six years ago.' },
      { role: 'user', name: 'Tove', content: 'The wedding cake was lemon.' },
    ];
    const first = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'tove-chat', session_date: '2023-06-01', messages } });
    await h.waitForJob('acme', first.body.job_id);
    const [cake] = (await search(h, 'wedding cake lemon')).filter((result) => result.provenance.source_id === first.body.source_id);
    expect((await h.api('PATCH', `/v1/memories/${cake!.id}`, { body: { content: 'Tove: The wedding cake was lemon and elderflower.' } })).status).toBe(200);
    const edited = (await h.api('GET', `/v1/memories/${cake!.id}`)).body;

    // Another session date reads every message again: the edit stays as it was.
    const again = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'tove-chat', session_date: '2023-06-09', messages } });
    expect(again.body).toMatchObject({ status: 'queued', messages_added: 2 });
    expect((await h.waitForJob('acme', again.body.job_id)).status).toBe('completed');
    expect((await h.api('GET', `/v1/memories/${cake!.id}`)).body).toMatchObject({ text: edited.text, updated_at: edited.updated_at, created_at: edited.created_at });
  });

  it('ingests a conversation sent again under its conversation_id as an update: new and edited messages only', async () => {
    const conversationMemories = async () => {
      const { hits } = await h.runtime.es.search<{ id: string; text: string; provenance: { job_id: string; turn_start: number } }>({
        index: h.runtime.indices.memories,
        query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.document_id': 'ferry-chat' } }] } },
        size: 100,
      });
      return hits.hits.map((hit) => hit._source!);
    };
    const messages = [
      { role: 'user', name: 'Rosa', content: 'The ferry to Tangier leaves at nine on Saturday.', turn_id: 'F1' },
      { role: 'assistant', content: 'Shall I remind you on Friday evening?', turn_id: 'F2' },
      { role: 'user', name: 'Rosa', content: 'Yes, and pack the blue suitcase.', turn_id: 'F3' },
    ];
    const body = { conversation_id: 'ferry-chat', session_date: '2024-06-01', messages };
    const first = await h.api('POST', '/v1/conversations', { body });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ status: 'queued', job_id: expect.any(String), messages_added: 3, messages_unchanged: 0 });
    expect((await h.waitForJob('acme', first.body.job_id)).status).toBe('completed');
    const before = await conversationMemories();
    expect(before.length).toBeGreaterThanOrEqual(3);

    // The same conversation again: nothing to do, no job, nothing stored twice.
    const same = await h.api('POST', '/v1/conversations', { body });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ status: 'unchanged', job_id: null, source_id: first.body.source_id, messages_added: 0, messages_unchanged: 3 });

    // An agent sends the conversation so far on every turn: the first message edited, one more at the end.
    const edited = [{ ...messages[0]!, content: 'The ferry to Tangier leaves at eleven on Saturday.' }, messages[1]!, messages[2]!, { role: 'user', name: 'Rosa', content: 'Book a taxi to the port too.', turn_id: 'F4' }];
    const update = await h.api('POST', '/v1/conversations', { body: { ...body, messages: edited } });
    expect(update.status).toBe(202);
    expect(update.body).toMatchObject({ status: 'queued', messages_added: 2, messages_unchanged: 2 });
    expect(update.body.memories_replaced).toBeGreaterThan(0);
    expect((await h.waitForJob('acme', update.body.job_id)).status).toBe('completed');
    const after = await conversationMemories();
    expect(after.some((memory) => memory.text.includes('leaves at nine'))).toBe(false);
    expect(after.some((memory) => memory.text.includes('leaves at eleven'))).toBe(true);
    expect(after.some((memory) => memory.text.includes('taxi to the port'))).toBe(true);
    // The unchanged messages kept their memories (same ids) and were not ingested again.
    const untouched = (memories: typeof before) => memories.filter((memory) => memory.provenance.turn_start === 1 || memory.provenance.turn_start === 2).map((memory) => memory.id).sort();
    expect(untouched(after)).toEqual(untouched(before));
    expect(after.filter((memory) => memory.provenance.job_id === update.body.job_id).every((memory) => [0, 3].includes(memory.provenance.turn_start))).toBe(true);
    expect((await search(h, 'ferry Tangier leaves at nine')).filter((result) => result.text.includes('leaves at nine'))).toEqual([]);
    // The reply next to the edited message holds its new words as context, not the old ones, so the
    // old words no longer find it either.
    const reply = after.find((memory) => memory.provenance.turn_start === 1)!;
    const { _source: replied } = await h.runtime.es.get<{ context?: string }>({ index: h.runtime.indices.memories, id: reply.id });
    expect(replied!.context).toContain('leaves at eleven');
    expect(replied!.context).not.toContain('leaves at nine');
    expect((await search(h, 'nine')).map((result) => result.id)).not.toContain(reply.id);

    // Sent again by another user: every message is read again under the new scope, none left under the old.
    const moved = await h.api('POST', '/v1/conversations', { body: { ...body, messages: edited, scope: { user_id: 'rosa-2' } } });
    expect(moved.status).toBe(202);
    expect(moved.body).toMatchObject({ status: 'queued', messages_added: 4, messages_unchanged: 0 });
    expect((await h.waitForJob('acme', moved.body.job_id)).status).toBe('completed');
    const { hits: scoped } = await h.runtime.es.search<{ scope: { user_id?: string } }>({
      index: h.runtime.indices.memories,
      query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.document_id': 'ferry-chat' } }] } },
      size: 100,
    });
    expect(scoped.hits.length).toBe(after.length);
    expect(scoped.hits.every((hit) => hit._source!.scope.user_id === 'rosa-2')).toBe(true);

    // In a batch, the same: nothing new, no job.
    const batched = await h.api('POST', '/v1/batch', { body: { items: [{ type: 'conversation', ...body, messages: edited, scope: { user_id: 'rosa-2' } }] } });
    expect(batched.status).toBe(202);
    expect(batched.body.results).toEqual([expect.objectContaining({ index: 0, status: 'unchanged', job_id: null })]);

    // Without a conversation_id a conversation is ingested as sent, every time.
    const { conversation_id: _id, ...anonymous } = body;
    const plain = await h.api('POST', '/v1/conversations', { body: anonymous });
    expect(plain.status).toBe(202);
    expect(plain.body).toEqual({ job_id: expect.any(String), source_id: expect.any(String), status: 'queued' });
    expect((await h.waitForJob('acme', plain.body.job_id)).status).toBe('completed');
  });

  it('keeps a re-sent conversation apart from a document of the same id, and the same words at two places apart', async () => {
    const memoriesOf = async (documentId: string) => {
      const { hits } = await h.runtime.es.search<{ text: string; metadata?: Record<string, unknown>; provenance: { format: string; turn_start?: number } }>({
        index: h.runtime.indices.memories,
        query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.document_id': documentId } }] } },
        size: 100,
      });
      return hits.hits.map((hit) => hit._source!);
    };
    const done = async (response: { status: number; body: { job_id: string } }) => {
      expect(response.status).toBe(202);
      expect((await h.waitForJob('acme', response.body.job_id)).status).toBe('completed');
    };
    // A document and a conversation under one id share a source: new metadata for the conversation
    // reaches its memories, not the document's.
    await done(await h.api('POST', '/v1/documents', { body: { content: 'The lighthouse keeper logs the tides twice a day.', format: 'TXT', document_id: 'shared-id', metadata: { kind: 'doc' } } }));
    const chat = { conversation_id: 'shared-id', messages: [{ role: 'user', content: 'Did the keeper log the evening tide?' }], metadata: { kind: 'chat' } };
    await done(await h.api('POST', '/v1/conversations', { body: chat }));
    const retagged = await h.api('POST', '/v1/conversations', { body: { ...chat, metadata: { kind: 'chat', reviewed: true } } });
    expect(retagged.body).toMatchObject({ status: 'updated', job_id: null });
    const shared = await memoriesOf('shared-id');
    expect(shared.find((memory) => memory.provenance.format === 'TXT')?.metadata).toEqual({ kind: 'doc' });
    expect(shared.find((memory) => memory.provenance.format === 'CONVERSATION')?.metadata).toEqual({ kind: 'chat', reviewed: true });

    // "ok" said again later: a second memory at its own position, not the first one overwritten.
    const ok = { role: 'user', name: 'Sam', content: 'ok' };
    await done(await h.api('POST', '/v1/conversations', { body: { conversation_id: 'ok-chat', messages: [ok] } }));
    await done(await h.api('POST', '/v1/conversations', { body: { conversation_id: 'ok-chat', messages: [ok, ok] } }));
    expect((await memoriesOf('ok-chat')).map((memory) => memory.provenance.turn_start).sort()).toEqual([0, 1]);

    // A conversation stored before its messages were recorded (started as /v1/conversations used to
    // start every one): its first update under the id replaces what the edited message said.
    const legacy = await h.jobs.start({
      tenant: 'acme',
      kind: 'conversation',
      format: 'CONVERSATION',
      documentType: 'ai-chat-conversation',
      documentId: 'legacy-chat',
      surface: 'native',
      content: JSON.stringify({ messages: [{ role: 'user', content: 'The bakery opens at seven.' }] }),
    });
    expect((await h.waitForJob('acme', legacy.jobId)).status).toBe('completed');
    await done(await h.api('POST', '/v1/conversations', { body: { conversation_id: 'legacy-chat', messages: [{ role: 'user', content: 'The bakery opens at eight.' }] } }));
    expect((await memoriesOf('legacy-chat')).map((memory) => memory.text)).toEqual(['user: The bakery opens at eight.']);
  });

  it('lists and gets entities only within the tenant', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Ingrid Bergstrom met Tomas Lindqvist in Stockholm to discuss the Nordic Rail project.' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const listed = await h.api('GET', '/v1/entities?page_size=50');
    expect(listed.status).toBe(200);
    expect(listed.body.total).toBeGreaterThan(0);
    const entity = listed.body.entities[0];
    const got = await h.api('GET', `/v1/entities/${entity.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: entity.id, tenant: 'acme' });
    // Exactly the fields the OpenAPI document describes: no vector, nothing undocumented.
    expect(Entity.strict().safeParse(got.body).error).toBeUndefined();
    expect(got.body.embedding).toBeUndefined();
    expect((await h.api('GET', `/v1/entities/${entity.id}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('GET', '/v1/entities', { key: h.keys.globex })).body.total).toBe(0);
  });

  it('publishes an OpenAPI document generated from the schemas and a docs page', async () => {
    const spec = await h.api('GET', '/openapi.json', { key: null });
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe('3.1.0');
    const documents = spec.body.paths['/v1/documents'].post;
    expect(documents.requestBody.content['application/json'].schema.required).toContain('content');
    expect(spec.body.paths['/compat/crosmos/api/v1/conversations'].post.requestBody.content['application/json'].schema.properties.messages.maxItems).toBe(500);
    // Each surface's errors as it answers them: FastAPI's 422 for Crosmos, the native shape with 413/415/503 for uploads.
    const crosmos = spec.body.paths['/compat/crosmos/api/v1/conversations'].post.responses;
    expect(crosmos['422'].content['application/json'].schema.properties.detail.type).toBe('array');
    expect(crosmos['400']).toBeUndefined();
    const files = spec.body.paths['/v1/files'].post.responses;
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['202', '400', '401', '403', '413', '415', '503']));
    // What an upload really answers has exactly the documented fields.
    const uploaded = await h.api('POST', '/v1/files', { body: upload('spec.txt', 'The spec check note.', 'text/plain') });
    expect(Object.keys(uploaded.body).sort()).toEqual(Object.keys(files['202'].content['application/json'].schema.properties).sort());
    expect(Object.keys(spec.body.paths['/compat/synap/v1/memories/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'put', 'delete']));
    expect(spec.body.paths['/healthz'].get.security).toEqual([]);
    // Every success that answers a body documents it (a client generated from the document can read it).
    const undocumented = Object.entries(spec.body.paths as Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) =>
        Object.entries(operation.responses)
          .filter(([status, response]) => status.startsWith('2') && status !== '204' && !response.content && path !== '/metrics')
          .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect(undocumented).toEqual([]);
    // Every JSON body has a size limit, on every surface: its 413 is documented.
    const bodies = Object.entries(spec.body.paths as Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>).flatMap(([path, operations]) =>
      Object.entries(operations).filter(([, operation]) => operation.requestBody?.content['application/json']).map(([method, operation]) => ({ route: `${method} ${path}`, statuses: Object.keys(operation.responses) })),
    );
    expect(bodies.filter(({ statuses }) => !statuses.includes('413')).map(({ route }) => route)).toEqual([]);
    // A native JSON route's refusal of a body that is not JSON is documented too (the harness holds the status to the entry).
    expect((await h.api('POST', '/v1/search', { body: 'query=tea', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    // A real search answer has the documented fields (and each result those of a memory).
    const searchSchema = spec.body.paths['/v1/search'].post.responses['200'].content['application/json'].schema;
    await h.waitForJob('acme', uploaded.body.job_id);
    const answer = await h.api('POST', '/v1/search', { body: { query: 'spec check note', mode: 'bm25' } });
    expect(answer.body.results.length).toBeGreaterThan(0);
    for (const key of Object.keys(answer.body)) expect(Object.keys(searchSchema.properties)).toContain(key);
    const resultSchema = searchSchema.properties.results.items;
    for (const key of Object.keys(answer.body.results[0])) expect(Object.keys(resultSchema.properties)).toContain(key);
    for (const key of resultSchema.required) expect(Object.keys(answer.body.results[0])).toContain(key);
    // And a memory read by id has those of the memory schema.
    const memorySchema = spec.body.paths['/v1/memories/{id}'].get.responses['200'].content['application/json'].schema;
    const memory = (await h.api('GET', `/v1/memories/${answer.body.results[0].id}`)).body;
    for (const key of Object.keys(memory)) expect(Object.keys(memorySchema.properties)).toContain(key);
    for (const key of memorySchema.required) expect(Object.keys(memory)).toContain(key);
    const docs = await h.api('GET', '/docs', { key: null });
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/html/);
  });
});
