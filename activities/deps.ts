import type { Client } from '@elastic/elasticsearch';
import type { ActivitiesInFlight } from '../lib/activities-in-flight';
import type { BlobStore } from '../lib/blob/store';
import type { Config } from '../lib/config';
import type { CpuTurns } from '../lib/cpu-turns';
import type { EmbeddingMatch } from '../lib/elasticsearch/embedding-match';
import type { IndexNames } from '../lib/elasticsearch/indices';
import type { PromptRefresh } from '../lib/elasticsearch/refresh';
import type { Logger } from '../lib/logger';
import type { Embedder } from '../lib/models/embedder';
import type { Extractor } from '../lib/models/extractor';

/** Services the activities run over, injected so tests hand in real (or local) ones. */
export interface ActivityDeps {
  config: Config;
  es: Client;
  indices: IndexNames;
  blobs: BlobStore;
  /** Absent when no embedding model is configured: memories are then stored without vectors. */
  embedder?: Embedder;
  /** Whether the vector indices were built for that embedder: asked before any vector is written. */
  embeddingMatch: EmbeddingMatch;
  /** Extractors by mode: `fast` and `long-range` may differ. */
  extractors: { fast: Extractor; 'long-range': Extractor };
  /** The worker's CPU-bound stage work (parsing, local extraction), in the order it asked. */
  cpuTurns: CpuTurns;
  /** How many activities this process is running (every registered activity is counted). */
  activitiesInFlight: ActivitiesInFlight;
  /** The pipeline's `wait_for` writes, refreshed at once when every activity here is waiting for a refresh. */
  promptRefresh: PromptRefresh;
  log: Logger;
}
