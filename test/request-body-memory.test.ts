import http from 'node:http';
import { startHarness, type Harness } from './support/harness';

/**
 * Request bodies are held in memory while they are read and accepted: the bodies in flight at once
 * are bounded (REQUEST_BODY_MEMORY_MB), one past the bound answered 503 with Retry-After in its
 * surface's shape, and the room comes back as each answer goes.
 */
describe('request bodies in memory', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { REQUEST_BODY_MEMORY_MB: '1' } });
  });
  afterAll(async () => h?.close());

  const documentOf = (marker: string) => ({ content: `${marker} `.repeat(120_000).trim(), format: 'TXT' });

  /** A request whose body arrives half now and half when `finish` is called: a slow upload in flight. */
  function slowUpload(path: string, body: string): { finish: () => Promise<{ status: number; body: string }> } {
    const request = http.request(`${h.baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.keys.acme}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on('response', (response) => {
        let text = '';
        response.on('data', (data) => (text += data));
        response.on('end', () => resolve({ status: response.statusCode!, body: text }));
      });
      request.on('error', reject);
    });
    request.write(body.slice(0, body.length / 2));
    return {
      finish: async () => {
        request.end(body.slice(body.length / 2));
        return answered;
      },
    };
  }

  it('answers 503 with Retry-After to a body past the bound while another is read, in the surface’s shape, and takes it once that one is answered', async () => {
    // 0.6 MB in flight; another 0.6 MB would pass the 1 MB bound.
    const first = slowUpload('/v1/documents', JSON.stringify(documentOf('heron')));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const refused = await h.api('POST', '/v1/documents', { body: documentOf('egret') });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body.error.code).toBe('upstream_failure');
    const refusedThere = await h.api('POST', '/compat/supermemory/v3/documents', { body: { content: `${'egret '.repeat(120_000)}` } });
    expect(refusedThere.status).toBe(503);
    expect(refusedThere.body).toMatchObject({ error: expect.stringContaining('request bodies') });
    // Small bodies still fit beside it.
    expect((await h.api('POST', '/v1/search', { body: { query: 'heron', mode: 'bm25' } })).status).toBe(200);

    const firstAnswer = await first.finish();
    expect(firstAnswer).toMatchObject({ status: 202 });
    const again = await h.api('POST', '/v1/documents', { body: documentOf('egret') });
    expect(again.status).toBe(202);
  });
});
