import type OpenAI from 'openai';
import { upstreamFailure } from '../errors';
import type { Embedder } from './embedder';
import { openAIFailure } from './openai-client';

/** Native sizes of OpenAI's embedding models; other (compatible) models must state their dims. */
const NATIVE_DIMS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** OpenAI caps one embeddings request at 2048 inputs. */
const MAX_INPUTS = 2048;

export class OpenAIEmbedder implements Embedder {
  readonly dims: number;
  /** Dimensions are part of the model's identity: 512-d vectors of a model are not its 1536-d ones. */
  readonly model: string;
  private readonly requestDims?: number;

  constructor(
    private readonly client: OpenAI,
    private readonly modelName: string,
    dims?: number,
  ) {
    const native = NATIVE_DIMS[modelName];
    const resolved = dims ?? native;
    if (!resolved) throw new Error(`OPENAI_EMBEDDING_DIMS must be set for the embedding model ${modelName}`);
    this.dims = resolved;
    this.requestDims = dims !== undefined && dims !== native ? dims : undefined;
    this.model = `openai/${modelName}${this.requestDims ? `@${this.requestDims}` : ''}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += MAX_INPUTS) {
      // The API refuses empty strings; a single space embeds as "nothing" without failing the batch.
      const input = texts.slice(start, start + MAX_INPUTS).map((text) => (text.trim() ? text : ' '));
      let response: OpenAI.Embeddings.CreateEmbeddingResponse;
      try {
        response = await this.client.embeddings.create({
          model: this.modelName,
          input,
          encoding_format: 'float',
          ...(this.requestDims ? { dimensions: this.requestDims } : {}),
        });
      } catch (error) {
        throw openAIFailure(error, 'OpenAI embeddings');
      }
      const ordered = [...response.data].sort((a, b) => a.index - b.index);
      if (ordered.length !== input.length) throw upstreamFailure(`OpenAI returned ${ordered.length} embeddings for ${input.length} inputs`);
      for (const item of ordered) {
        if (item.embedding.length !== this.dims) {
          throw upstreamFailure(`OpenAI returned ${item.embedding.length}-d vectors; the index expects ${this.dims}`);
        }
        vectors.push(item.embedding);
      }
    }
    return vectors;
  }
}
