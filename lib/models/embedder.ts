/**
 * Turns text into vectors. Implementations: the local in-process model (default, offline) and OpenAI
 * (or any OpenAI-compatible server). The index records `model` and `dims`; vectors of two models are
 * never mixed in one index.
 */
export interface Embedder {
  readonly model: string;
  readonly dims: number;
  embed(texts: string[], options?: EmbedOptions): Promise<number[][]>;
}

export interface EmbedOptions {
  /**
   * A caller is waiting for these vectors (a search query, a memory edit, Tex's active write): run
   * them before queued background work, such as a backlog of ingest jobs' memories. A model that
   * serves requests side by side (a remote API) may ignore it.
   */
  urgent?: boolean;
}
