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

/** The cosine similarity of two vectors (0 when either is all zeros). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
