import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookStore } from '../lib/webhooks';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A receiver on 127.0.0.1: records every POST; `failFirst` paths answer 503 to their first attempt. */
async function startReceiver() {
  const received: Received[] = [];
  const failFirst = new Set<string>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      const answered = failFirst.delete(path) ? 503 : 200;
      received.push({ path, headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, received, failFirst, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The Standard Webhooks check a receiver makes, written out here rather than borrowed from lib/webhooks. */
function verifies(secret: string, delivery: Received): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signed = `${delivery.headers['webhook-id']}.${delivery.headers['webhook-timestamp']}.${delivery.body}`;
  const expected = createHmac('sha256', key).update(signed).digest('base64');
  return String(delivery.headers['webhook-signature']).split(' ').includes(`v1,${expected}`);
}

describe('webhooks: job events delivered to subscribed URLs', () => {
  let h: Harness;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    // The receiver listens on loopback, which deployments refuse (tested below with the guard on).
    h = await startHarness({
      tenants: ['acme', 'globex', 'initech', 'hooli', 'umbrella'],
      env: { CAIRN_ALLOW_PRIVATE_URLS: 'true' },
      wrapActivities: (activities) => ({
        ...activities,
        // Jobs sent with metadata {test: 'slow-index'} take their time once indexed, so a cancel lands then.
        indexMemories: async (...args) => {
          const indexed = await activities.indexMemories(...args);
          if (args[0].request.metadata?.test === 'slow-index') await new Promise((resolve) => setTimeout(resolve, 1500));
          return indexed;
        },
      }),
    });
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  const deliveriesTo = (path: string) => receiver.received.filter((delivery) => delivery.path === path);

  it('manages subscriptions per tenant: the secret is shown once, other tenants get 404, admin is required', async () => {
    const created = await h.api('POST', '/v1/webhooks', { body: { url: `${receiver.url}/manage`, description: 'ops' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^wh_[0-9a-f]{16}$/), url: `${receiver.url}/manage`, events: ['job.completed', 'job.failed', 'job.cancelled'], description: 'ops' });
    expect(created.body.secret).toMatch(/^whsec_/);

    const listed = await h.api('GET', '/v1/webhooks');
    expect(listed.body.webhooks.map((hook: { id: string }) => hook.id)).toEqual([created.body.id]);
    expect(listed.body.webhooks[0].secret).toBeUndefined();
    expect((await h.api('GET', `/v1/webhooks/${created.body.id}`)).body.secret).toBeUndefined();

    expect((await h.api('GET', `/v1/webhooks/${created.body.id}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('DELETE', `/v1/webhooks/${created.body.id}`, { key: h.keys.globex })).status).toBe(404);
    expect((await h.api('GET', '/v1/webhooks', { key: h.keys.globex })).body.webhooks).toEqual([]);

    const minted = await h.api('POST', '/v1/admin/keys', { key: h.operatorKey, body: { tenant: 'acme', permissions: ['ingest', 'read'] } });
    expect((await h.api('POST', '/v1/webhooks', { key: minted.body.key, body: { url: `${receiver.url}/x` } })).status).toBe(403);

    expect((await h.api('POST', '/v1/webhooks', { body: { url: 'ftp://example.com/hook' } })).status).toBe(400);
    expect((await h.api('POST', '/v1/webhooks', { body: { url: `${receiver.url}/x`, events: ['job.started'] } })).status).toBe(400);
    const notAnId = await h.api('GET', '/v1/webhooks/not-an-id');
    expect(notAnId.status).toBe(400);
    expect(notAnId.body.error.message).toBe('id (path): not a webhook id');

    expect((await h.api('DELETE', `/v1/webhooks/${created.body.id}`)).status).toBe(204);
    expect((await h.api('GET', `/v1/webhooks/${created.body.id}`)).status).toBe(404);
  });

  it('holds a tenant to 20 subscriptions, also when creates race', async () => {
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => h.api('POST', '/v1/webhooks', { key: h.keys.hooli, body: { url: `${receiver.url}/burst/${i}` } })));
    const created = answers.filter((answer) => answer.status === 201).length;
    expect(answers.every((answer) => answer.status === 201 || answer.status === 400)).toBe(true);
    const listed = (await h.api('GET', '/v1/webhooks', { key: h.keys.hooli })).body.webhooks;
    expect(listed).toHaveLength(created);
    expect(created).toBeLessThanOrEqual(20);
    expect(created).toBeGreaterThan(0);
  });

  it('refuses loopback, private and metadata URLs where private targets are not allowed', async () => {
    const guarded = new WebhookStore(h.runtime.es, h.runtime.indices.webhooks, false);
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://127.0.0.1:9200/', 'http://10.0.0.8/hook', 'http://localhost/hook']) {
      await expect(guarded.create('acme', { url, events: ['job.completed'] })).rejects.toMatchObject({ code: 'bad_input' });
    }
    // A host name that resolves to a private address is refused when the webhook is created too. Test
    // double for DNS (no public name here resolves to a private address): a resolver answering as a
    // rebinding or internal name would; a name that does not resolve yet is let through.
    const resolver = async (host: string) => (host === 'hooks.example.com' ? [{ address: '10.1.2.3', family: 4 }] : Promise.reject(new Error('ENOTFOUND')));
    const resolving = new WebhookStore(h.runtime.es, h.runtime.indices.webhooks, false, 5_000, resolver);
    await expect(resolving.create('acme', { url: 'https://hooks.example.com/cairn', events: ['job.completed'] })).rejects.toMatchObject({
      code: 'bad_input',
      message: expect.stringMatching(/resolves to 10\.1\.2\.3/),
    });
    const pending = await resolving.create('dns-check', { url: 'https://not-yet.example.com/cairn', events: ['job.completed'] });
    await resolving.delete('dns-check', pending.record.id);
  });

  it('POSTs a signed job.completed event, retries a receiver that failed with the same event id, and tells no other tenant', async () => {
    const created = await h.api('POST', '/v1/webhooks', { key: h.keys.globex, body: { url: `${receiver.url}/globex` } });
    expect(created.status).toBe(201);
    receiver.failFirst.add('/globex');

    const other = await h.api('POST', '/v1/documents', { key: h.keys.initech, body: { content: 'Initech ships the TPS report cover sheets on Fridays.', format: 'TXT' } });
    const accepted = await h.api('POST', '/v1/documents', { key: h.keys.globex, body: { content: 'Globex moved the volcano lair tour to Thursday.', format: 'TXT' } });
    expect(accepted.status).toBe(202);
    expect((await h.waitForJob('globex', accepted.body.job_id)).status).toBe('completed');
    await h.waitForJob('initech', other.body.job_id);

    // The first attempt was answered 503; the retry (about 2 s later) is the same event.
    await waitFor('a retried delivery', async () => (deliveriesTo('/globex').length >= 2 ? true : undefined), { timeoutMs: 30_000 });
    const [first, retry] = deliveriesTo('/globex');
    expect([first!.answered, retry!.answered]).toEqual([503, 200]);
    expect(retry!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(retry!.headers['webhook-id']).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(retry!.headers['content-type']).toBe('application/json');
    expect(verifies(created.body.secret, retry!)).toBe(true);
    expect(verifies(created.body.secret, { ...retry!, body: retry!.body.replace('completed', 'failed') })).toBe(false);
    const event = JSON.parse(retry!.body);
    expect(event).toMatchObject({ type: 'job.completed', data: { job_id: accepted.body.job_id, tenant: 'globex', status: 'completed', memories_created: 1 } });
    expect(event.timestamp).toBe(event.data.finished_at);
    // The job's own status never waited for the receiver; initech has no webhook and nothing else came.
    expect(receiver.received.every((delivery) => JSON.parse(delivery.body).data.tenant === 'globex')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(deliveriesTo('/globex')).toHaveLength(2);
  });

  it('sends job.failed only to subscriptions of that event, with the reason', async () => {
    const failedOnly = await h.api('POST', '/v1/webhooks', { key: h.keys.initech, body: { url: `${receiver.url}/initech-failed`, events: ['job.failed'] } });
    const completedOnly = await h.api('POST', '/v1/webhooks', { key: h.keys.initech, body: { url: `${receiver.url}/initech-completed`, events: ['job.completed'] } });
    expect([failedOnly.status, completedOnly.status]).toEqual([201, 201]);
    // Subscriptions are read through a cache of a few seconds by the worker: wait it out, since
    // initech already had a job end before they existed.
    await new Promise((resolve) => setTimeout(resolve, 5500));

    const corrupt = new TextEncoder().encode('%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\ngarbage without xref\n%%EOF\n');
    const started = await h.jobs.start({ tenant: 'initech', kind: 'file', format: 'PDF', content: corrupt, fileName: 'broken.pdf' });
    expect((await h.waitForJob('initech', started.jobId)).status).toBe('failed');

    await waitFor('the job.failed delivery', async () => (deliveriesTo('/initech-failed').length >= 1 ? true : undefined), { timeoutMs: 30_000 });
    const event = JSON.parse(deliveriesTo('/initech-failed')[0]!.body);
    expect(event).toMatchObject({ type: 'job.failed', data: { job_id: started.jobId, status: 'failed', errors: [{ stage: 'parse', code: 'bad_input' }] } });
    expect(verifies(failedOnly.body.secret, deliveriesTo('/initech-failed')[0]!)).toBe(true);
    expect(deliveriesTo('/initech-completed')).toHaveLength(0);
  });

  it('sends job.cancelled with the memories the cancelled job left stored, as its status counts them', async () => {
    const created = await h.api('POST', '/v1/webhooks', { key: h.keys.umbrella, body: { url: `${receiver.url}/umbrella`, events: ['job.cancelled'] } });
    expect(created.status).toBe(201);
    // A small job's stages run in one workflow task: a cancel during it leaves the history counting none.
    const accepted = await h.api('POST', '/v1/documents', { key: h.keys.umbrella, body: { content: 'Umbrella moved its Raccoon City lab to the old water plant.', metadata: { test: 'slow-index' } } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await h.api('POST', `/v1/jobs/${accepted.body.job_id}/cancel`, { key: h.keys.umbrella })).status).toBe(202);
    expect((await h.waitForJob('umbrella', accepted.body.job_id)).status).toBe('cancelled');
    const status = (await h.api('GET', `/v1/jobs/${accepted.body.job_id}`, { key: h.keys.umbrella })).body;
    expect(status.memories_created).toBeGreaterThan(0);

    await waitFor('the job.cancelled delivery', async () => (deliveriesTo('/umbrella').length >= 1 ? true : undefined), { timeoutMs: 30_000 });
    const event = JSON.parse(deliveriesTo('/umbrella')[0]!.body);
    expect(event).toMatchObject({ type: 'job.cancelled', data: { job_id: accepted.body.job_id, status: 'cancelled', memories_created: status.memories_created, counts: status.counts } });
  });
});
