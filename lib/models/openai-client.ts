import OpenAI from 'openai';
import type { Config } from '../config';
import { badInput, upstreamFailure, type CairnError } from '../errors';

/**
 * One OpenAI client per process. OPENAI_BASE_URL points it at any OpenAI-compatible server; the SDK
 * retries 429 and 5xx answers with backoff (honouring Retry-After) before an error reaches us.
 */
export function createOpenAIClient(config: Pick<Config, 'OPENAI_API_KEY' | 'OPENAI_BASE_URL'>, options: { maxRetries?: number; timeoutMs?: number } = {}): OpenAI {
  return new OpenAI({
    apiKey: config.OPENAI_API_KEY,
    baseURL: config.OPENAI_BASE_URL,
    maxRetries: options.maxRetries ?? 4,
    timeout: options.timeoutMs ?? 60_000,
  });
}

/** OpenAI's error codes for content the model will not take, whatever the configuration. */
const REFUSED_CONTENT = new Set(['context_length_exceeded', 'string_above_max_length', 'content_filter', 'content_policy_violation', 'invalid_prompt']);

/**
 * An OpenAI error as the failure to raise. The server refusing the content itself (413, or a 400/422
 * whose code says the input is too long or not allowed) is bad input: a retry sends the same content.
 * Anything else is retried until it passes: 429 and 5xx after the SDK's own retries, a network
 * failure, and configuration errors (a rejected key, an unknown model, a parameter the model does not
 * take: 400, 401, 403, 404), which the operator fixes while accepted jobs wait.
 */
export function openAIFailure(error: unknown, what: string): CairnError {
  const { status, code } = error as { status?: number; code?: string | null };
  const message = `${what} failed: ${(error as Error).message}`;
  const refused = status === 413 || ((status === 400 || status === 422) && code != null && REFUSED_CONTENT.has(code));
  return refused ? badInput(message) : upstreamFailure(message);
}
