import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type dns from 'node:dns';
import { fetchUrlSafely } from '../activities/fetch-url';
import { isPublicAddress } from '../lib/outbound';
import { CairnError } from '../lib/errors';

/** A local fixture server; reachable only because these tests opt in to private networks. */
function startServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const route = req.url ?? '/';
    if (route === '/page') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end('<html><body><p>Lisbon fixture page</p></body></html>');
    } else if (route === '/redirect') {
      res.writeHead(302, { location: '/page' }).end();
    } else if (route === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (route === '/to-file') {
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    } else if (route === '/big') {
      res.setHeader('content-length', String(1024 * 1024));
      res.end(Buffer.alloc(1024 * 1024, 97));
    } else if (route === '/big-chunked') {
      // No content-length: the cap must hold while streaming.
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16 * 1024, 97));
      res.end();
    } else if (route === '/slow') {
      setTimeout(() => res.end('late'), 3000);
    } else if (route === '/slow-body') {
      // Headers at once, then the body stalls past the time limit.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('the first part… ');
      setTimeout(() => res.end('and the rest'), 3000);
    } else if (route === '/gzipped') {
      res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync('<html><body><p>Compressed fixture about Porto</p></body></html>'));
    } else if (route === '/gzip-bomb') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync(Buffer.alloc(5 * 1024 * 1024, 97)));
    } else if (route === '/no-location') {
      res.writeHead(302).end('<p>moved, but nowhere</p>');
    } else if (route === '/missing') {
      res.writeHead(404).end('nope');
    } else if (route === '/unavailable') {
      res.writeHead(503).end('busy');
    } else res.writeHead(500).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}

async function failure(promise: Promise<unknown>): Promise<CairnError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CairnError) return error;
    throw error;
  }
  throw new Error('expected the fetch to fail');
}

describe('URL fetching refuses SSRF targets and caps size and time', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => server.close());

  it('classifies addresses: only public unicast is fetchable', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00:ec2::254', '::ffff:127.0.0.1', '::7f00:1', '::a00:1']) {
      expect([address, isPublicAddress(address)]).toEqual([address, false]);
    }
    expect(isPublicAddress('93.184.216.34')).toBe(true);
    expect(isPublicAddress('2606:2800:220:1:248:1893:25c8:1946')).toBe(true);
  });

  it('refuses loopback, private, link-local and metadata literals, however they are written', async () => {
    const port = new URL(server.url).port;
    for (const target of [
      `${server.url}/page`,
      `http://2130706433:${port}/page`,
      `http://0x7f.1:${port}/page`,
      `http://[::ffff:127.0.0.1]:${port}/page`,
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/',
      `http://localhost:${port}/page`,
    ]) {
      const error = await failure(fetchUrlSafely(target, { allowPrivateNetworks: false }));
      expect(error.code).toBe('bad_input');
      expect(error.message).toMatch(/refused/);
    }
  });

  it('refuses a name that resolves to a private address, after DNS resolution', async () => {
    const port = new URL(server.url).port;
    const lookup = ((_host: string, options: unknown, callback: (e: null, a: dns.LookupAddress[]) => void) =>
      callback(null, [{ address: '127.0.0.1', family: 4 }])) as unknown as typeof dns.lookup;
    const error = await failure(fetchUrlSafely(`http://intranet.example.com:${port}/page`, { allowPrivateNetworks: false, lookup }));
    expect(error.code).toBe('bad_input');
    expect(error.message).toMatch(/refused.*private/);
    // The same name is fetched when private networks are allowed: the refusal came from the address.
    const allowed = await fetchUrlSafely(`http://intranet.example.com:${port}/page`, { allowPrivateNetworks: true, lookup });
    expect(allowed.body.toString()).toContain('Lisbon fixture page');
  });

  it('refuses non-http schemes and credentials, also on redirect', async () => {
    expect((await failure(fetchUrlSafely('file:///etc/passwd'))).message).toMatch(/scheme/);
    expect((await failure(fetchUrlSafely('http://user:pw@example.com/'))).message).toMatch(/credentials/);
    expect((await failure(fetchUrlSafely(`${server.url}/to-file`, { allowPrivateNetworks: true }))).message).toMatch(/scheme file:/);
  });

  it('follows redirects up to a limit and reports the final URL and content type', async () => {
    const fetched = await fetchUrlSafely(`${server.url}/redirect`, { allowPrivateNetworks: true });
    expect(fetched.finalUrl).toBe(`${server.url}/page`);
    expect(fetched.contentType).toMatch(/text\/html/);
    expect((await failure(fetchUrlSafely(`${server.url}/loop`, { allowPrivateNetworks: true, maxRedirects: 3 }))).message).toMatch(/redirected more than 3/);
  });

  it('caps the size by header and while streaming, and the time', async () => {
    expect((await failure(fetchUrlSafely(`${server.url}/big`, { allowPrivateNetworks: true, maxBytes: 1000 }))).message).toMatch(/over the 1000 byte limit/);
    expect((await failure(fetchUrlSafely(`${server.url}/big-chunked`, { allowPrivateNetworks: true, maxBytes: 100_000 }))).message).toMatch(/over the 100000 byte limit/);
    const slow = await failure(fetchUrlSafely(`${server.url}/slow`, { allowPrivateNetworks: true, timeoutMs: 300 }));
    expect(slow.code).toBe('upstream_failure');
    expect(slow.message).toMatch(/timed out/);
    const stalled = await failure(fetchUrlSafely(`${server.url}/slow-body`, { allowPrivateNetworks: true, timeoutMs: 300 }));
    expect(stalled).toMatchObject({ code: 'upstream_failure', message: `fetching ${server.url}/slow-body timed out while reading` });
  });

  it('inflates a body the server compressed unasked, within the byte cap', async () => {
    expect((await fetchUrlSafely(`${server.url}/gzipped`, { allowPrivateNetworks: true })).body.toString()).toContain('Compressed fixture about Porto');
    expect((await failure(fetchUrlSafely(`${server.url}/gzip-bomb`, { allowPrivateNetworks: true, maxBytes: 1024 * 1024 }))).message).toMatch(/unpacks to over the 1048576 byte limit/);
  });

  it('does not ingest a redirect that names no target', async () => {
    expect(await failure(fetchUrlSafely(`${server.url}/no-location`, { allowPrivateNetworks: true }))).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/302 without a location/) });
  });

  it('treats 4xx as bad input and 5xx as a transient upstream failure', async () => {
    expect((await failure(fetchUrlSafely(`${server.url}/missing`, { allowPrivateNetworks: true }))).code).toBe('bad_input');
    expect((await failure(fetchUrlSafely(`${server.url}/unavailable`, { allowPrivateNetworks: true }))).code).toBe('upstream_failure');
  });

  it('refuses a server whose TLS certificate cannot be trusted as bad input (a retry would meet the same certificate)', async () => {
    // A self-signed certificate, made here with openssl.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const tls = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => res.end('secret page'));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const error = await failure(fetchUrlSafely(`https://127.0.0.1:${(tls.address() as AddressInfo).port}/page`, { allowPrivateNetworks: true }));
      expect(error).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/TLS certificate is not valid \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\)/) });
    } finally {
      await new Promise((resolve) => tls.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
