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

/**
 * An OpenAI error as the failure to raise. The server refusing the content itself (400 — e.g. over
 * the model's context —, 413, 422) is bad input: a retry sends the same content. Anything else is
 * retried until it passes: 429 and 5xx after the SDK's own retries, a network failure, and also a
 * rejected key or an unknown model (401, 403, 404), which the operator fixes while accepted jobs wait.
 */
export function openAIFailure(error: unknown, what: string): CairnError {
  const status = (error as { status?: number }).status;
  const message = `${what} failed: ${(error as Error).message}`;
  return status === 400 || status === 413 || status === 422 ? badInput(message) : upstreamFailure(message);
}
