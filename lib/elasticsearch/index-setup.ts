import type { Client } from '@elastic/elasticsearch';
import { CairnError, upstreamFailure, writeBlockOf } from '../errors';
import type { Logger } from '../logger';
import { ensureIndices, indexNames, type IndexNames } from './indices';
import type { EmbeddingSpec } from './mappings';

const RETRY_MS = 5_000;

/**
 * Cairn's indices put in place as a process starts (ensureIndices). A cluster-wide read-only block
 * (`cluster.blocks.read_only`, or `cluster.blocks.read_only_allow_delete` as an operator sets it at
 * the flood stage) refuses every change to the cluster's metadata: the creation of a missing index
 * and the mapping update of one that exists alike. The process starts anyway and tries again every
 * 5 s until the block lifts. Until every index exists (a first start), `inPlace` is false: the API
 * answers 503 naming the block (trying again first), so nothing written in the meantime can make
 * Elasticsearch create an index by itself, with a guessed mapping, under one of Cairn's aliases.
 */
export class IndexSetup {
  readonly names: IndexNames;
  private done = false;
  private missing = true;
  private blocked = false;
  private stopped = false;
  private attempt?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private readonly created: Promise<void>;
  private markCreated!: () => void;

  private constructor(
    private readonly es: Client,
    private readonly prefix: string,
    private readonly embedding: EmbeddingSpec,
    private readonly log: Logger,
  ) {
    this.names = indexNames(prefix);
    this.created = new Promise((resolve) => (this.markCreated = resolve));
  }

  /** Puts the indices in place, or, when a block refuses it, starts trying again; other failures are thrown. */
  static async start(es: Client, prefix: string, embedding: EmbeddingSpec, log: Logger): Promise<IndexSetup> {
    const setup = new IndexSetup(es, prefix, embedding, log);
    try {
      await setup.ensure();
    } catch (error) {
      if (!(error instanceof CairnError)) throw error;
      const meanwhile = setup.missing ? 'every request answers 503, there being no index to read yet' : "writes answer 503, and Cairn's mappings are brought up to date after";
      log.warn(`${error.message}. Trying again every ${RETRY_MS / 1000} s; until then ${meanwhile}`);
      setup.retryUntilDone();
    }
    return setup;
  }

  /** Whether every index exists (its mapping may still wait for a block to lift). */
  get inPlace(): boolean {
    return !this.missing;
  }

  /** Settles once every index exists. */
  whenInPlace(): Promise<void> {
    return this.created;
  }

  /**
   * Every index in place, trying once more now if not: rejects with a 503 (a CairnError) naming the
   * block while it holds, with Elasticsearch's error for any other failure. Concurrent callers share
   * one attempt.
   */
  ensure(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.attempt ??= this.put().finally(() => (this.attempt = undefined));
    return this.attempt;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }

  private async put(): Promise<void> {
    try {
      await ensureIndices(this.es, this.prefix, this.embedding);
    } catch (error) {
      const block = writeBlockOf(error);
      if (!block) throw error;
      this.blocked = true;
      if (this.missing) this.missing = !(await this.allExist());
      if (!this.missing) this.markCreated();
      throw upstreamFailure(`Elasticsearch refuses writes now (${block})${this.missing ? ": Cairn's indices are created once the block lifts" : ''}`);
    }
    this.done = true;
    this.missing = false;
    this.markCreated();
    clearTimeout(this.retry);
    if (this.blocked) this.log.info("Elasticsearch takes writes again: Cairn's indices are in place");
  }

  private async allExist(): Promise<boolean> {
    const found = await Promise.all(Object.values(this.names).map((alias) => this.es.indices.existsAlias({ name: alias })));
    return found.every(Boolean);
  }

  private retryUntilDone(): void {
    if (this.stopped) return;
    this.retry = setTimeout(() => {
      this.ensure().catch((error) => {
        if (!(error instanceof CairnError)) this.log.warn({ err: error }, "could not put Cairn's indices in place; trying again");
        this.retryUntilDone();
      });
    }, RETRY_MS);
    this.retry.unref();
  }
}
