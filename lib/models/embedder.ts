/**
 * Turns text into vectors. Implementations: the local in-process model (default, offline) and OpenAI
 * (or any OpenAI-compatible server). The index records `model` and `dims`; vectors of two models are
 * never mixed in one index.
 */
export interface Embedder {
  readonly model: string;
  readonly dims: number;
  embed(texts: string[]): Promise<number[][]>;
}
