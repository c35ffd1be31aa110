import OpenAI from 'openai';
import type { Config } from '../config';

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
