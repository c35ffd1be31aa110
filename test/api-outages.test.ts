import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { StaticKeyResolver } from '../api/auth';
import { createApp } from '../api/server';
import { LocalBlobStore, type BlobStore } from '../lib/blob/store';
import { loadConfig } from '../lib/config';
import { createElasticsearchClient, forApiRequests, REQUEST_TIMEOUT_MS } from '../lib/elasticsearch/client';
import { deleteIndices, indexNames } from '../lib/elasticsearch/indices';
import { EmbeddingMatch } from '../lib/elasticsearch/embedding-match';
import { IngestJobs } from '../lib/jobs';
import { createLogger } from '../lib/logger';
import { deleteTaskQueueWorkflows } from '../lib/temporal/cleanup';
import { freePort } from '../lib/local-services/ports';
import { closeTemporalLater } from './support/harness';
import { tcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';


/**
 * The API with one of its services down for real (its address refuses connections), the other the
 * local one: requests that need the missing service answer 503 with Retry-After in their surface's
 * shape, never a 500; those that do not need it go on working.
 */
async function apiWith(down: 'temporal' | 'elasticsearch' | 'nothing' | 'temporal-stalled' | 'elasticsearch-stalled', blobStore: (folder: string) => BlobStore = (folder) => new LocalBlobStore(folder)) {
  const id = randomBytes(4).toString('hex');
  // A port nothing listens on: the service is down.
  const port = await freePort();
  // Temporal or Elasticsearch through a proxy the test can freeze: a server that takes connections and says nothing.
  const local = loadConfig({ ...process.env, NODE_ENV: 'test' });
  const stall =
    down === 'temporal-stalled' ? await tcpProxy(`http://${local.temporalAddress}`) : down === 'elasticsearch-stalled' ? await tcpProxy(local.elasticsearchUrl) : undefined;
  const config = loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    ELASTICSEARCH_INDEX_PREFIX: `cairn-test-${id}`,
    TEMPORAL_TASK_QUEUE: `cairn-test-${id}`,
    CAIRN_BLOB_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-blobs-')),
    CAIRN_API_KEYS: `key_${id}=acme`,
    ACCEPT_START_DEADLINE_MS: '2000',
    ...(down === 'temporal' ? { TEMPORAL_ADDRESS: `127.0.0.1:${port}` } : down === 'elasticsearch' ? { ELASTICSEARCH_URL: `http://127.0.0.1:${port}` } : {}),
    ...(stall && down === 'temporal-stalled' ? { TEMPORAL_ADDRESS: new URL(stall.url).host } : {}),
    ...(stall && down === 'elasticsearch-stalled' ? { ELASTICSEARCH_URL: stall.url } : {}),
  });
  const connection = down === 'temporal' ? Connection.lazy({ address: config.temporalAddress }) : await Connection.connect({ address: config.temporalAddress });
  // The test's own view of Temporal, never through the proxy.
  const direct = down === 'temporal-stalled' ? await Connection.connect({ address: local.temporalAddress }) : connection;
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  // The API process's client (api/main.ts: createRuntime(…, 'api')), whose requests have the API's deadline.
  const es = forApiRequests(createElasticsearchClient(config.elasticsearchUrl));
  const indices = indexNames(config.ELASTICSEARCH_INDEX_PREFIX);
  const jobs = new IngestJobs(client, blobStore(config.blobDir), config, es);
  const search = { es, index: indices.memories, embeddingMatch: new EmbeddingMatch(es, indices, { model: 'none', dims: 384 }) };
  const app = createApp({ es, temporal: connection, namespace: config.TEMPORAL_NAMESPACE, jobs, keys: [new StaticKeyResolver(config.staticApiKeys)], log: createLogger('silent', 'outage'), search });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer key_${id}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json().catch(() => undefined)) as any };
  };
  const directClient = new Client({ connection: direct, namespace: config.TEMPORAL_NAMESPACE });
  return {
    call,
    client: directClient,
    stall,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    blobDir: config.blobDir,
    async close() {
      stall?.thaw();
      await new Promise((resolve) => server.close(resolve));
      if (down !== 'temporal') await deleteTaskQueueWorkflows(directClient, config.TEMPORAL_TASK_QUEUE);
      if (down !== 'elasticsearch') await deleteIndices(es, config.ELASTICSEARCH_INDEX_PREFIX);
      // The calls the API's deadlines gave up on may still be retrying inside the SDK.
      closeTemporalLater(connection);
      if (down === 'temporal-stalled') await direct.close();
      await stall?.close();
      await es.close();
      fs.rmSync(config.blobDir, { recursive: true, force: true });
    },
  };
}

const conversation = { role: 'user', content: 'The ferry to the island leaves at nine.' };

describe('outages: a service that is down is a 503 to retry, in the surface’s own shape', () => {
  it('Temporal down: ingests, job reads, cancels and vendor ingests answer 503 with Retry-After', async () => {
    const api = await apiWith('temporal');
    try {
      // Each waits out the Temporal client's own retries (about 20 s), so they run side by side.
      const [document, listing, status, cancel, synap, crosmos, supermemory] = await Promise.all([
        api.call('POST', '/v1/documents', { content: 'The lighthouse was repainted in April.' }),
        api.call('GET', '/v1/jobs'),
        api.call('GET', '/v1/jobs/abc123'),
        api.call('POST', '/v1/jobs/abc123/cancel'),
        api.call('POST', '/compat/synap/v1/memories', { content: 'hello there', document_id: `d-${Date.now()}` }),
        api.call('POST', '/compat/crosmos/api/v1/conversations', { space_id: '8f7c2b1e-1111-4c3d-9e2f-0123456789ab', messages: [conversation] }),
        api.call('POST', '/compat/supermemory/v4/conversations', { conversationId: `c-${Date.now()}`, messages: [conversation] }),
      ]);
      for (const answer of [document, listing, status, cancel, synap, crosmos, supermemory]) {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe('5');
      }
      expect(document.body.error).toMatchObject({ code: 'upstream_failure', message: expect.stringMatching(/Temporal is unavailable/) });
      // The refused document's upload is not left behind (a fresh job's upload is `<tenant>/jobs/<id>/raw`;
      // those under caller-derived ids, which a re-send may find started after all, stay).
      const files = fs.readdirSync(api.blobDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
      expect(files.map((entry) => entry.name)).not.toContain('raw');
      expect(files.length).toBeGreaterThan(0);
      expect(synap.body.error.code).toBe('upstream_failure');
      expect(crosmos.body.detail).toMatch(/Temporal is unavailable/);
      expect(supermemory.body).toMatchObject({ error: expect.any(String) });
    } finally {
      await api.close();
    }
  }, 90_000);

  it('Temporal stalled (taking connections, answering nothing): an ingest is a 503 after its deadline, not a request that hangs, and its start, landing later, does not run', async () => {
    const api = await apiWith('temporal-stalled');
    try {
      api.stall!.freeze();
      const asked = Date.now();
      const [document, listing] = await Promise.all([
        api.call('POST', '/v1/documents', { content: 'The stalled server never saw the mill reopen.' }),
        api.call('GET', '/v1/jobs'),
      ]);
      expect(document.status).toBe(503);
      expect(document.body.error.message).toMatch(/Temporal is unavailable: it did not acknowledge the job's start within 2 s/);
      // Visibility reads have their own deadline (10 s).
      expect(listing.status).toBe(503);
      expect(Date.now() - asked).toBeLessThan(20_000);
      // Temporal answers again: the start it was holding lands, and is ended at once (never run: no
      // worker polls this queue, so it could only be ended by the API that refused it).
      api.stall!.thaw();
      const ended = await waitFor('the late start to be ended', async () => {
        const runs: string[] = [];
        for await (const run of api.client.workflow.list({ query: `TaskQueue = '${api.taskQueue}'` })) runs.push(run.status.name);
        return runs.length > 0 && runs.every((status) => status === 'TERMINATED') ? runs : undefined;
      }, { timeoutMs: 30_000 });
      expect(ended).toEqual(['TERMINATED']);
    } finally {
      await api.close();
    }
  }, 90_000);

  it('Elasticsearch down: acceptance still works; memory, search and duplicate-checking ingests answer 503', async () => {
    const api = await apiWith('elasticsearch');
    try {
      // Accepting a document needs the blob store and Temporal only: the job waits for Elasticsearch.
      const accepted = await api.call('POST', '/v1/documents', { content: 'The harbour crane was moved in May.' });
      expect(accepted.status).toBe(202);
      // Its status comes from its workflow while the summaries cannot be read.
      expect((await api.call('GET', `/v1/jobs/${accepted.body.job_id}`)).body).toMatchObject({ job_id: accepted.body.job_id, status: 'queued' });
      // Once it has ended, its record is what says how: unreadable now, so a 503, not an outcome
      // made up from its input ("ended before it recorded its outcome").
      await api.client.workflow.getHandle(`ingest/acme/${accepted.body.job_id}`).terminate('the test ends it');
      const ended = await api.call('GET', `/v1/jobs/${accepted.body.job_id}`);
      expect([ended.status, ended.body.error?.message]).toEqual([503, expect.stringMatching(/has ended, and its record cannot be read now/)]);

      const answers = await Promise.all([
        api.call('GET', '/v1/memories/mem_0123456789abcdef'),
        api.call('PATCH', '/v1/memories/mem_0123456789abcdef', { content: 'x' }),
        api.call('DELETE', '/v1/memories/mem_0123456789abcdef'),
        api.call('POST', '/v1/search', { query: 'harbour crane', mode: 'bm25' }),
        api.call('GET', '/v1/entities'),
        api.call('GET', '/v1/jobs/no-such-job'),
        api.call('POST', '/compat/synap/v1/memories', { content: 'hello there', document_id: `d-${Date.now()}` }),
        api.call('POST', '/compat/supermemory/v4/conversations', { conversationId: `c-${Date.now()}`, messages: [conversation] }),
        // A Tex write reads what its session stored, and claims its positions, first.
        api.call('POST', '/compat/tex/ingestion/memory', { scope: { org_id: 'org_outage', session_id: 's1' }, turns: [{ role: 'user', text: 'The ferry leaves at nine.' }] }),
      ]);
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe('5');
      }
    } finally {
      await api.close();
    }
  }, 90_000);

  it('Elasticsearch stalled (taking connections, answering nothing): reads answer 503 after the API’s request timeout, not 30 s or more', async () => {
    const api = await apiWith('elasticsearch-stalled');
    try {
      api.stall!.freeze();
      const asked = Date.now();
      const answers = await Promise.all([
        api.call('POST', '/v1/search', { query: 'harbour crane', mode: 'bm25' }),
        api.call('GET', '/v1/memories/mem_0123456789abcdef'),
        api.call('GET', '/v1/entities'),
        api.call('GET', '/v1/sources'),
      ]);
      const waited = Date.now() - asked;
      expect(answers.map((answer) => [answer.status, answer.retryAfter])).toEqual(answers.map(() => [503, '5']));
      expect(answers[0]!.body.error.message).toMatch(/Elasticsearch .*timed out/i);
      // Each waited the API's timeout (10 s) once: not the worker's 30 s, nor a retry of it.
      expect(waited).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS.api - 500);
      expect(waited).toBeLessThan(REQUEST_TIMEOUT_MS.worker - 5_000);
    } finally {
      await api.close();
    }
  }, 90_000);

  it('an index deleted from under a running API: reads answer 503 naming it, not 500', async () => {
    // This API's indices were never created: as if deleted while it runs.
    const api = await apiWith('nothing');
    try {
      const answers = await Promise.all([api.call('GET', '/v1/entities'), api.call('GET', '/v1/sources'), api.call('POST', '/v1/search', { query: 'tide tables', mode: 'bm25' })]);
      expect(answers.map((answer) => answer.status)).toEqual([503, 503, 503]);
      expect(answers[0]!.body.error.message).toMatch(/Elasticsearch has no index cairn-test-\w+-entities.*restart the API and worker/);
    } finally {
      await api.close();
    }
  }, 60_000);

  it('an upload the disk fails to flush is an error, not a 202, and the job it started is ended', async () => {
    // The blob is written and readable, but flushing it to stable storage fails (an I/O error): a fresh
    // job's workflow was started meanwhile, and no 2xx may be given for content that is not durable.
    class FlushFailingStore extends LocalBlobStore {
      override async write(key: string, data: Uint8Array | string) {
        const { durable } = await super.write(key, data);
        await durable;
        const failed = new Promise<void>((_, reject) => setTimeout(() => reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })), 50));
        failed.catch(() => undefined);
        return { durable: failed };
      }
    }
    const api = await apiWith('nothing', (folder) => new FlushFailingStore(folder));
    try {
      const answer = await api.call('POST', '/v1/documents', { content: 'The tide tables were reprinted in June.' });
      // A disk fault, as a full disk is: Cairn's storage, not the request, to retry once an operator has seen to it.
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe('5');
      expect(answer.body.error).toEqual({ code: 'upstream_failure', message: "Cairn's storage failed: its disk reports an I/O error (EIO)" });
      // Visibility trails the start a little.
      let runs: { workflowId: string }[] = [];
      for (let tries = 0; runs.length === 0 && tries < 50; tries++) {
        if (tries) await new Promise((resolve) => setTimeout(resolve, 100));
        runs = [];
        for await (const run of api.client.workflow.list({ query: `TaskQueue = '${api.taskQueue}'` })) runs.push(run);
      }
      expect(runs).toHaveLength(1);
      expect((await api.client.workflow.getHandle(runs[0]!.workflowId).describe()).status.name).toBe('TERMINATED');
    } finally {
      await api.close();
    }
  }, 90_000);
});
