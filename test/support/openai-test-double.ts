import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * TEST DOUBLE for OpenAI's servers, which cannot be reached from here: a local HTTP server speaking the
 * two endpoints Cairn uses (/v1/embeddings, /v1/chat/completions). It records every request so tests
 * can check request shapes, and can be told to fail the next requests with a status (429, 500, …)
 * to exercise retries. Embeddings are derived from the input so equal texts get equal vectors; they
 * only test plumbing, never retrieval quality.
 */
export interface RecordedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface OpenAITestDouble {
  baseUrl: string;
  requests: RecordedRequest[];
  /** The next `count` requests answer `status` (with Retry-After: 0 for 429), with OpenAI's error `code` when given. */
  failNext(status: number, count?: number, code?: string): void;
  /** What chat completions answer with as message content (a JSON string for structured outputs); undefined answers no choice at all. */
  chatContent: (body: any) => string | undefined;
  close(): Promise<void>;
}

export async function startOpenAITestDouble(dims = 8): Promise<OpenAITestDouble> {
  const failures: { status: number; code?: string }[] = [];
  const double: Partial<OpenAITestDouble> & { requests: RecordedRequest[] } = {
    requests: [],
    failNext: (status, count = 1, code) => failures.push(...Array.from({ length: count }, () => ({ status, code }))),
    chatContent: () => JSON.stringify({ memories: [] }),
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : undefined;
      double.requests.push({ path: req.url ?? '', headers: req.headers, body });
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(payload));
      };
      const failure = failures.shift();
      if (failure) {
        const error = { message: `test double failure ${failure.status}`, type: failure.status < 500 ? 'invalid_request_error' : 'server_error', code: failure.code ?? null };
        return send(failure.status, { error }, failure.status === 429 ? { 'retry-after': '0' } : {});
      }
      if (req.url === '/v1/embeddings') {
        const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
        const size = body.dimensions ?? dims;
        return send(200, {
          object: 'list',
          model: body.model,
          data: inputs.map((text, index) => ({ object: 'embedding', index, embedding: Array.from({ length: size }, (_, d) => ((text.charCodeAt(d % text.length) || 1) % 17) / 17) })),
          usage: { prompt_tokens: 1, total_tokens: 1 },
        });
      }
      if (req.url === '/v1/chat/completions') {
        return send(200, {
          id: 'chatcmpl-test',
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: ((content) => (content === undefined ? [] : [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content, refusal: null } }]))(double.chatContent!(body)),
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        });
      }
      send(404, { error: { message: `no route ${req.url}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  double.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  double.close = () => new Promise((resolve) => server.close(() => resolve()));
  return double as OpenAITestDouble;
}
