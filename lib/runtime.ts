import type { Client } from '@elastic/elasticsearch';
import { LocalBlobStore, type BlobStore } from './blob/store';
import type { Config } from './config';
import { createElasticsearchClient } from './elasticsearch/client';
import { ensureIndices, type IndexNames } from './elasticsearch/indices';
import type { Logger } from './logger';
import { createModelProviders, embeddingSpec, type ModelProviders } from './models/providers';

/** The services API and worker share, built once from the configuration. */
export interface Runtime {
  config: Config;
  es: Client;
  indices: IndexNames;
  blobs: BlobStore;
  models: ModelProviders;
  log: Logger;
  close(): Promise<void>;
}

export async function createRuntime(config: Config, log: Logger): Promise<Runtime> {
  const es = createElasticsearchClient(config.elasticsearchUrl);
  const models = await createModelProviders(config, log);
  const indices = await ensureIndices(es, config.ELASTICSEARCH_INDEX_PREFIX, embeddingSpec(models.embedder));
  const blobs = new LocalBlobStore(config.blobDir);
  return {
    config,
    es,
    indices,
    blobs,
    models,
    log,
    close: async () => {
      await models.close();
      await es.close();
    },
  };
}
