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

export interface ClientOptions {
  url: string;
  key?: string;
}

export class CairnClient {
  constructor(private readonly options: ClientOptions) {}

  async request<T = any>(method: string, route: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.key) headers.authorization = `Bearer ${this.options.key}`;
    let payload: RequestInit['body'];
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(new URL(route, this.options.url), { method, headers, body: payload });
    } catch (error) {
      throw new ApiError(0, `cannot reach Cairn at ${this.options.url}: ${(error as Error).cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? text ?? response.statusText;
      throw new ApiError(response.status, `${method} ${route} answered ${response.status}: ${message}`);
    }
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
