import type { Client } from '@elastic/elasticsearch';
import { LocalBlobStore, type BlobStore } from './blob/store';
import type { Config } from './config';
import { createElasticsearchClient, forApiRequests } from './elasticsearch/client';
import { EmbeddingMatch, REINDEX_REMEDY, describeMismatch, type EmbeddingMismatch } from './elasticsearch/embedding-match';
import type { IndexNames } from './elasticsearch/indices';
import { IndexSetup } from './elasticsearch/index-setup';
import type { Logger } from './logger';
import { createModelProviders, embeddingSpec, type ModelProviders } from './models/providers';
import type { SearchDeps } from './search/execute';

/** The services API and worker share, built once from the configuration. */
export interface Runtime {
  config: Config;
  es: Client;
  indices: IndexNames;
  /** Whether the indices are in place (a read-only cluster can hold them back: see IndexSetup). */
  indexSetup: IndexSetup;
  blobs: BlobStore;
  models: ModelProviders;
  /** The configured embedder against the model the vector indices record; asked before vectors are used. */
  embeddingMatch: EmbeddingMatch;
  /**
   * The mismatch of the last check, if any: set at start-up when the indices were built for another
   * model, cleared by the first check after a reindex has swapped the aliases.
   */
  readonly embeddingMismatch: EmbeddingMismatch | undefined;
  log: Logger;
  close(): Promise<void>;
}

/**
 * `api`: what the API process asks of Elasticsearch after start-up is given REQUEST_TIMEOUT_MS.api
 * (a caller waits on it); the worker, and a process running both, keep the longer worker timeout.
 * Under a read-only cluster that holds its indices back, the API starts (answering 503 until they
 * exist); a worker waits for them, since its jobs have nowhere to write.
 */
export async function createRuntime(config: Config, log: Logger, role: 'api' | 'worker' = 'worker'): Promise<Runtime> {
  const connected = createElasticsearchClient(config.elasticsearchUrl);
  const models = await createModelProviders(config, log);
  const configured = embeddingSpec(models.embedder);
  const indexSetup = await IndexSetup.start(connected, config.ELASTICSEARCH_INDEX_PREFIX, configured, log);
  if (role === 'worker') await indexSetup.whenInPlace();
  const indices = indexSetup.names;
  const es = role === 'api' ? forApiRequests(connected) : connected;
  const embeddingMatch = new EmbeddingMatch(es, indices, configured);
  // Indices created later are created for the configured model.
  if (indexSetup.inPlace) warnOfMismatches(log, await embeddingMatch.mismatches());
  const blobs = new LocalBlobStore(config.blobDir);
  return {
    config,
    es,
    indices,
    indexSetup,
    blobs,
    models,
    embeddingMatch,
    get embeddingMismatch() {
      return embeddingMatch.lastKnown[0];
    },
    log,
    close: async () => {
      indexSetup.stop();
      await models.close();
      await connected.close();
    },
  };
}

/** What search runs over: the memories alias, the embedder, and whether the two still match. */
export function searchDepsOf(runtime: Runtime): SearchDeps {
  return { es: runtime.es, index: runtime.indices.memories, embedder: runtime.models.embedder, embeddingMatch: runtime.embeddingMatch };
}

/** Starting anyway is deliberate (the reindex needs a worker with the new model): say so loudly. */
function warnOfMismatches(log: Logger, mismatches: EmbeddingMismatch[]): void {
  for (const mismatch of mismatches) {
    log.warn(
      { embeddingMismatch: mismatch },
      `Embedding model change: ${describeMismatch(mismatch)}. Until a reindex re-embeds it, search answers with BM25 only ` +
        `(kNN and hybrid fall back, with a warning) and ingest jobs wait before writing vectors. ${REINDEX_REMEDY}`,
    );
  }
}
