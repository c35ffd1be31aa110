import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Embedder } from './embedder';
import type { Extractor } from './extractor';
import { LocalEmbedder } from './local-embedder';
import { NlpExtractor } from './nlp-extractor';
import { createOpenAIClient } from './openai-client';
import { OpenAIEmbedder } from './openai-embedder';
import { OpenAIExtractor } from './openai-extractor';

export interface ModelProviders {
  embedder?: Embedder;
  extractors: { fast: Extractor; 'long-range': Extractor };
  /** Stops background model threads. */
  close(): Promise<void>;
}

function useOpenAI(choice: 'auto' | 'local' | 'openai', config: Config, what: string): boolean {
  if (choice === 'local') return false;
  if (choice === 'openai' && !config.OPENAI_API_KEY) throw new Error(`${what}=openai needs OPENAI_API_KEY`);
  return Boolean(config.OPENAI_API_KEY);
}

/**
 * Chooses the embedding and extraction providers from the configuration: OpenAI (or any compatible
 * server at OPENAI_BASE_URL) when a key is set, otherwise the local in-process model and NLP extractor.
 * The local model is installed and loaded here, so a process is ready to embed once it starts.
 */
export async function createModelProviders(config: Config, log: Logger): Promise<ModelProviders> {
  const openai = config.OPENAI_API_KEY ? createOpenAIClient(config) : undefined;
  let embedder: Embedder;
  let local: LocalEmbedder | undefined;
  // Asked first: a provider set to openai without a key is refused, not quietly run locally.
  if (useOpenAI(config.EMBEDDING_PROVIDER, config, 'EMBEDDING_PROVIDER') && openai) {
    embedder = new OpenAIEmbedder(openai, config.OPENAI_EMBEDDING_MODEL, config.OPENAI_EMBEDDING_DIMS);
  } else {
    local = new LocalEmbedder({ cacheDir: config.CAIRN_CACHE_DIR, threads: config.EMBEDDING_THREADS, log: (line) => log.info(line) });
    await local.start();
    embedder = local;
  }
  const extractors =
    useOpenAI(config.EXTRACTION_PROVIDER, config, 'EXTRACTION_PROVIDER') && openai
      ? { fast: new OpenAIExtractor(openai, config.OPENAI_EXTRACTION_MODEL, 'fast'), 'long-range': new OpenAIExtractor(openai, config.OPENAI_EXTRACTION_MODEL, 'long-range') }
      : { fast: new NlpExtractor('fast'), 'long-range': new NlpExtractor('full') };
  log.info({ embedder: embedder.model, dims: embedder.dims, extractor: extractors['long-range'].name }, 'model providers ready');
  return { embedder, extractors, close: async () => local?.close() };
}

export function embeddingSpec(embedder: Embedder | undefined) {
  return { model: embedder?.model ?? 'none', dims: embedder?.dims ?? 384 };
}
