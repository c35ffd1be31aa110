import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The CLI's only way into Cairn: the HTTP API, as any other client would use it. The base URL and key
 * come from CAIRN_URL and CAIRN_API_KEY (or flags).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The user interrupted the command (Ctrl-C): what was in flight was abandoned. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

export interface ClientOptions {
  url: string;
  key?: string;
  /** Told each time a 503 is waited out, e.g. to say so on stderr. */
  onRetry?: (message: string) => void;
  /** A request with no answer in this long is given up (an address that accepts but never answers). */
  timeoutMs: number;
  /** Aborted on Ctrl-C: requests in flight, and waits between them, end with Interrupted. */
  signal?: AbortSignal;
}

/** Every 503 is "a service is down, come back": waited out, for this long at most in all. */
const UNAVAILABLE_BUDGET_MS = 60_000;
const RETRY_AFTER_DEFAULT_S = 5;

export class CairnClient {
  constructor(private readonly options: ClientOptions) {}

  async request<T = any>(method: string, route: string, body?: unknown): Promise<T> {
    const giveUpAt = Date.now() + UNAVAILABLE_BUDGET_MS;
    for (;;) {
      const { response, text } = await this.send(method, route, body);
      const parsed = text ? safeJson(text) : undefined;
      if (response.ok) return parsed as T;
      const message = `${method} ${route} answered ${response.status}: ${(parsed as { error?: { message?: string } } | undefined)?.error?.message ?? (text || response.statusText)}`;
      const waitMs = retryAfterMs(response.headers.get('retry-after'));
      if (response.status !== 503 || Date.now() + waitMs > giveUpAt) throw new ApiError(response.status, message);
      this.options.onRetry?.(`${message} (trying again in ${Math.round(waitMs / 1000)} s)`);
      await sleep(waitMs, undefined, { signal: this.options.signal }).catch(() => {
        throw new Interrupted();
      });
    }
  }

  /** The answer read whole: one that stops after its headers is given up after the timeout, or on Ctrl-C, as one that never came. */
  private async send(method: string, route: string, body: unknown): Promise<{ response: Response; text: string }> {
    const headers: Record<string, string> = {};
    if (this.options.key) headers.authorization = `Bearer ${this.options.key}`;
    let payload: RequestInit['body'];
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const response = await fetch(new URL(route, this.options.url), { method, headers, body: payload, signal: this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout });
      return { response, text: await response.text() };
    } catch (error) {
      if (this.options.signal?.aborted) throw new Interrupted();
      const { name, message, cause } = error as Error;
      const reason = name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs / 1000} s` : cause instanceof Error ? cause.message : message;
      throw new ApiError(0, `cannot reach Cairn at ${this.options.url}: ${reason}`);
    }
  }
}

function retryAfterMs(header: string | null): number {
  const seconds = Number(header);
  return (header && Number.isFinite(seconds) && seconds >= 0 ? seconds : RETRY_AFTER_DEFAULT_S) * 1000;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
