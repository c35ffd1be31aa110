import type { Client } from '@elastic/elasticsearch';
import { ApplicationFailure } from '@temporalio/common';
import { embeddingOf, type IndexNames } from './indices';
import type { EmbeddingSpec } from './mappings';

/** The indices that hold vectors, and so record the model that made them. */
export type VectorIndex = 'memories' | 'entities';
const VECTOR_INDICES: VectorIndex[] = ['memories', 'entities'];

/** An index whose recorded model is not the configured embedder's: its vectors and ours are not comparable. */
export interface EmbeddingMismatch {
  index: VectorIndex;
  alias: string;
  stored: EmbeddingSpec;
  configured: EmbeddingSpec;
}

export const REINDEX_REMEDY =
  'Start a reindex backfill, which re-embeds every memory and entity into a new index version and then swaps the alias: ' +
  '`cairn backfill reindex` or `POST /v1/backfills {"backfill":"reindex"}` with the operator key (CAIRN_API_KEY). To go back instead, restore the previous model.';

export function describeMismatch(mismatch: EmbeddingMismatch): string {
  const { alias, stored, configured } = mismatch;
  return `${alias} holds vectors from ${stored.model} (${stored.dims} dims) but the configured embedder is ${configured.model} (${configured.dims} dims)`;
}

/** How long a checked answer is reused: the swap that ends a mismatch is rare, a search is not. */
const CACHE_MS = 5_000;
/** An ingest held back by a mismatch tries again this often, so it completes soon after the swap. */
const RETRY_WHILE_MISMATCHED = '10 seconds';

/**
 * The configured embedder against what the vector indices record in their mapping `_meta`. A process
 * starts despite a mismatch (a new model's worker must be able to run the reindex that fixes it), and
 * then everything that writes or searches vectors asks here first: search falls back to BM25, ingest
 * waits. The answer is re-read from the aliases, so the mismatch clears by itself once a reindex swaps.
 */
export class EmbeddingMatch {
  private known: EmbeddingMismatch[] = [];
  private checkedAt = 0;
  private reading?: Promise<EmbeddingMismatch[]>;

  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
    readonly configured: EmbeddingSpec,
  ) {}

  /** The mismatches seen by the last check (start-up, a search, an index write); empty when all match. */
  get lastKnown(): EmbeddingMismatch[] {
    return this.known;
  }

  /** Current mismatches; `fresh` skips the short cache (writes, which must not land in the wrong index). */
  async mismatches({ fresh = false } = {}): Promise<EmbeddingMismatch[]> {
    if (!fresh && this.checkedAt && Date.now() - this.checkedAt < CACHE_MS) return this.known;
    // Concurrent callers share one read; a failed read is not cached.
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  async mismatchOf(index: VectorIndex, options?: { fresh?: boolean }): Promise<EmbeddingMismatch | undefined> {
    return (await this.mismatches(options)).find((mismatch) => mismatch.index === index);
  }

  /** A matcher for another embedder (a worker handed a different model than the runtime's), or this one. */
  for(configured: EmbeddingSpec): EmbeddingMatch {
    if (configured.model === this.configured.model && configured.dims === this.configured.dims) return this;
    return new EmbeddingMatch(this.es, this.indices, configured);
  }

  /**
   * For activities that write vectors: a mismatch fails the attempt *retryably*, so the job waits in
   * Temporal (nothing accepted is lost) and completes once a reindex has moved the alias to an index
   * built for the configured model. Right before a write, check `fresh` (the default), not from the cache.
   */
  async assertVectorsFit(index: VectorIndex, { fresh = true } = {}): Promise<void> {
    const mismatch = await this.mismatchOf(index, { fresh });
    if (!mismatch) return;
    throw ApplicationFailure.create({
      type: 'EmbeddingMismatch',
      message: `${describeMismatch(mismatch)}; this job waits until a reindex has re-embedded the index. ${REINDEX_REMEDY}`,
      nonRetryable: false,
      nextRetryDelay: RETRY_WHILE_MISMATCHED,
    });
  }

  /**
   * Both vector indices in one request: each alias's concrete index and its mapping `_meta` only. A
   * write checks fresh, so this runs before every batch's index and entity writes; two full mapping
   * reads each time were a third of the requests a job made.
   */
  private async read(): Promise<EmbeddingMismatch[]> {
    const aliases = VECTOR_INDICES.map((index) => this.indices[index]);
    const indices = await this.es.indices.get({ index: aliases, features: ['aliases', 'mappings'], filter_path: ['*.aliases', '*.mappings._meta'] });
    const found = VECTOR_INDICES.map((index): EmbeddingMismatch | undefined => {
      const alias = this.indices[index];
      const behind = Object.values(indices).find((state) => state.aliases && alias in state.aliases);
      const stored = embeddingOf(behind?.mappings?._meta);
      // An index without a recorded model predates `_meta` and is trusted, as before.
      if (!stored || (stored.model === this.configured.model && stored.dims === this.configured.dims)) return undefined;
      return { index, alias, stored, configured: this.configured };
    });
    this.known = found.filter((mismatch): mismatch is EmbeddingMismatch => Boolean(mismatch));
    this.checkedAt = Date.now();
    return this.known;
  }
}
