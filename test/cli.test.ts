import { spawn, execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from './support/harness';
import { waitFor } from './support/wait';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** What the proxy does to a request it matches: answer it itself, or hold it before passing it on. */
type Fault = { method: string; path: RegExp; times?: number } & ({ status: number; retryAfter?: number } | { delayMs: number });

/**
 * The API behind a proxy that answers some requests itself (a 503 with Retry-After, a 500) or delays
 * them, and counts what it saw: the API as a user's CLI meets it on a bad day.
 */
async function faultyApi(target: string) {
  let faults: Fault[] = [];
  const seen: string[] = [];
  const held = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let mostInFlight = 0;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    seen.push(`${req.method} ${req.url}`);
    const fault = faults.find((f) => f.method === req.method && f.path.test(req.url!) && f.times! > 0);
    if (fault) fault.times! -= 1;
    if (fault && 'status' in fault) {
      if (fault.retryAfter !== undefined) res.setHeader('retry-after', String(fault.retryAfter));
      res.writeHead(fault.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unavailable', message: `injected ${fault.status}` } }));
      return;
    }
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    try {
      if (fault) await new Promise((resolve) => held.add(setTimeout(resolve, fault.delayMs)));
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !['host', 'connection', 'content-length'].includes(name))) as Record<string, string>;
      const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, body: chunks.length > 0 ? Buffer.concat(chunks) : undefined });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
    } catch {
      res.destroy();
    } finally {
      inFlight -= 1;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    inject(...next: Fault[]) {
      faults = next.map((fault) => ({ times: 1, ...fault }));
      seen.length = 0;
      mostInFlight = 0;
    },
    seen: () => [...seen],
    mostInFlight: () => mostInFlight,
    close: () => {
      for (const timer of held) clearTimeout(timer);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the cairn CLI, as its users meet it', () => {
  let h: Harness;
  let proxy: Awaited<ReturnType<typeof faultyApi>>;
  let folder: string;
  let cli: (...args: string[]) => Promise<{ stdout: string; stderr: string }>;

  beforeAll(async () => {
    h = await startHarness();
    proxy = await faultyApi(h.baseUrl);
    const env = { ...process.env, CAIRN_URL: proxy.url, CAIRN_API_KEY: h.keys.acme };
    cli = (...args: string[]) => run(TSX, ['cli/main.ts', ...args], { cwd: ROOT, env, timeout: 120_000 });
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-cli-'));
    for (let i = 1; i <= 8; i++) fs.writeFileSync(path.join(folder, `note-${i}.txt`), `Note ${i}: the ferry to island ${i} leaves at ${i} o'clock from pier ${i}.`);
  });
  afterAll(async () => {
    await proxy?.close();
    await h?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('uploads a folder a few files at a time, and names the files of a format Cairn does not read on stderr', async () => {
    const mixed = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-cli-mixed-'));
    for (const file of fs.readdirSync(folder)) fs.copyFileSync(path.join(folder, file), path.join(mixed, file));
    fs.writeFileSync(path.join(mixed, 'slides.pptx'), 'not a format Cairn reads');
    // A link to a file is a file of the folder too.
    fs.symlinkSync(path.join(folder, 'note-1.txt'), path.join(mixed, 'linked.txt'));
    proxy.inject({ method: 'POST', path: /^\/v1\/files$/, times: 100, delayMs: 300 });
    const { stdout, stderr } = await cli('--json', 'ingest', '--no-wait', mixed);
    const outcomes = JSON.parse(stdout) as { label: string; status: string }[];
    expect(outcomes.map((outcome) => path.basename(outcome.label)).sort()).toEqual(['linked.txt', ...fs.readdirSync(folder)].sort());
    expect(outcomes.every((outcome) => outcome.status === 'queued')).toBe(true);
    expect(stderr).toMatch(/skipped 1 file not named .*: .*slides\.pptx/);
    expect(proxy.mostInFlight()).toBeGreaterThan(1);
    expect(proxy.mostInFlight()).toBeLessThanOrEqual(4);
    fs.rmSync(mixed, { recursive: true, force: true });
  });

  it('waits out a 503 with Retry-After, ingesting and following a backfill as if it had not happened', async () => {
    proxy.inject({ method: 'POST', path: /^\/v1\/files$/, status: 503, retryAfter: 1 }, { method: 'GET', path: /^\/v1\/backfills\//, status: 503, retryAfter: 1 });
    const ingested = await cli('--json', 'ingest', path.join(folder, 'note-1.txt'));
    expect(JSON.parse(ingested.stdout)).toMatchObject([{ status: 'completed' }]);
    expect(ingested.stderr).toMatch(/POST \/v1\/files answered 503: injected 503 \(trying again in 1 s\)/);
    const backfill = await cli('--json', 'backfill', 'reembed');
    expect(JSON.parse(backfill.stdout)).toMatchObject({ status: 'completed', kind: 'reembed' });
  });

  it('still names every job it started when it cannot follow them to their end, and exits 1', async () => {
    proxy.inject({ method: 'GET', path: /^\/v1\/jobs\//, times: 1000, status: 500 });
    const failure = await cli('--json', 'ingest', folder).catch((error: { code: number; stdout: string; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 1 });
    const outcomes = JSON.parse(failure.stdout) as { jobId: string; error: string }[];
    expect(outcomes).toHaveLength(8);
    for (const outcome of outcomes) expect(outcome).toMatchObject({ jobId: expect.any(String), error: expect.stringMatching(/^not followed to its end: GET \/v1\/jobs\/\S+ answered 500/) });
    expect(failure.stderr).toMatch(/8 of 8 not ingested/);
  });

  it('on Ctrl-C stops at once, names the jobs already accepted and exits 130', async () => {
    // Job polls held: the CLI is interrupted while following.
    proxy.inject({ method: 'GET', path: /^\/v1\/jobs\//, times: 1000, delayMs: 60_000 });
    const child = spawn(TSX, ['cli/main.ts', '--json', 'ingest', folder], { cwd: ROOT, env: { ...process.env, CAIRN_URL: proxy.url, CAIRN_API_KEY: h.keys.acme }, detached: true });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('the CLI to follow its jobs', async () => (proxy.seen().some((line) => line.startsWith('GET /v1/jobs/')) ? true : undefined), { timeoutMs: 60_000 });
    const interruptedAt = Date.now();
    // Ctrl-C reaches the terminal's whole process group.
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    expect(Date.now() - interruptedAt).toBeLessThan(5_000);
    const outcomes = JSON.parse(stdout) as { jobId: string; status: string }[];
    expect(outcomes).toHaveLength(8);
    for (const outcome of outcomes) expect(outcome).toMatchObject({ jobId: expect.any(String), status: expect.stringMatching(/^(queued|running|completed)$/) });
  });

  it('stops at the first file when the API is out of reach or refuses the key: one line on stderr, exit 3 or 1', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    await expect(cli('--url', url, 'ingest', folder)).rejects.toMatchObject({ code: 3, stdout: '', stderr: expect.stringMatching(/^cannot reach Cairn at \S+: connect ECONNREFUSED \S+\n$/) });
    proxy.inject();
    await expect(cli('--key', 'wrong', 'ingest', folder)).rejects.toMatchObject({ code: 1, stdout: '', stderr: 'POST /v1/files answered 401: Invalid API key\n' });
    expect(proxy.seen().length).toBeLessThanOrEqual(4);
  });

  it('refuses bad options before sending anything, each with one line naming the option', async () => {
    proxy.inject();
    await expect(cli('ingest', '--document-type', 'memo', folder)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: option '--document-type <type>' argument 'memo' is invalid\. Allowed choices are .*note/) });
    await expect(cli('search', 'ferry', '--top-k', 'ten')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: option '-k, --top-k <n>' argument 'ten' is invalid/) });
    await expect(cli('backfill', 'reembed', '--batch-size', 'lots')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: option '--batch-size <n>' argument 'lots' is invalid/) });
    expect(proxy.seen()).toEqual([]);
  });

  it('gives up an address that never answers, after --timeout, as unreachable (exit 3)', async () => {
    const silent = http.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      await expect(cli('--url', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, '--timeout', '1', 'job', 'x')).rejects.toMatchObject({ code: 3, stderr: expect.stringMatching(/^cannot reach Cairn at \S+: no answer within 1 s\n$/) });
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('gives up an answer that stops after its headers, after --timeout, as unreachable (exit 3)', async () => {
    const stalled = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).write('{"job_id":'));
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    try {
      await expect(cli('--url', `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`, '--timeout', '1', 'job', 'x')).rejects.toMatchObject({ code: 3, stderr: expect.stringMatching(/^cannot reach Cairn at \S+: no answer within 1 s\n$/) });
    } finally {
      stalled.closeAllConnections();
      stalled.close();
    }
  });

  it('refuses a --timeout it cannot keep (0, or past the longest timer Node keeps) before sending anything', async () => {
    proxy.inject();
    for (const timeout of ['0', '3000000']) {
      await expect(cli('--timeout', timeout, 'job', 'x')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: option '--timeout <seconds>' argument '\d+' is invalid\. a number of seconds, more than 0 and at most 2147483\n$/) });
    }
    expect(proxy.seen()).toEqual([]);
  });

  it('describes every command in its --help, and prints JSON with --json', async () => {
    for (const parent of ['schedule', 'source']) {
      const { stdout } = await cli(parent, '--help');
      const commands = stdout.split('Commands:\n')[1]!.split('\n').filter((line) => /^ {2}\S/.test(line));
      for (const line of commands) expect(line).toMatch(/^ {2}\S.*\S {2,}\S/);
    }
    const created = JSON.parse((await cli('schedule', 'create', 'reembed', '--every', '24h', '--paused')).stdout) as { id: string };
    expect(JSON.parse((await cli('--json', 'schedule', 'delete', created.id)).stdout)).toEqual({ id: created.id, deleted: true });
  });
});
