import type { Extractor } from './extractor';

/**
 * The simplest honest extractor: each chunk becomes one `episode` memory with its exact text. It is
 * what `fast` mode falls back to when no richer extractor is configured.
 */
export class EpisodeExtractor implements Extractor {
  readonly name = 'episode';
  readonly keepsChunkText = true;

  async extract(chunks: Parameters<Extractor['extract']>[0]) {
    return {
      memories: chunks.map((chunk) => ({
        text: chunk.text,
        type: 'episode' as const,
        confidence: 1,
        entities: [],
        chunkIndex: chunk.index,
      })),
      usage: { tokensIn: 0, tokensOut: 0 },
    };
  }
}
