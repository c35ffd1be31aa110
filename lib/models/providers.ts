import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Embedder } from './embedder';
import { EpisodeExtractor } from './episode-extractor';
import type { Extractor } from './extractor';

export interface ModelProviders {
  embedder?: Embedder;
  extractors: { fast: Extractor; 'long-range': Extractor };
}

/** Chooses the embedding and extraction providers from the configuration. */
export async function createModelProviders(_config: Config, _log: Logger): Promise<ModelProviders> {
  const episode = new EpisodeExtractor();
  return { embedder: undefined, extractors: { fast: episode, 'long-range': episode } };
}

export function embeddingSpec(embedder: Embedder | undefined) {
  return { model: embedder?.model ?? 'none', dims: embedder?.dims ?? 384 };
}
