import express, { type Express } from 'express';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import type { Connection } from '@temporalio/client';
import { ApiKeyStore } from '../lib/apikeys';
import { ConversationLedger } from '../lib/conversation-ledger';
import { indexNames, type IndexNames } from '../lib/elasticsearch/indices';
import { JobListings } from '../lib/job-listing';
import type { IngestJobs } from '../lib/jobs';
import type { IngestMode } from '../lib/domain/ingest';
import type { Extractor } from '../lib/models/extractor';
import type { Logger } from '../lib/logger';
import { MemoryStore } from '../lib/memories';
import { MemoryListings } from '../lib/memory-listings';
import { EntityStore } from '../lib/entities/store';
import type { Embedder } from '../lib/models/embedder';
import { adminRoutes } from './admin';
import { backfillRoutes } from './backfills';
import { scheduleRoutes } from './schedules';
import { ApiMetrics } from '../lib/metrics';
import { BackfillRuns } from '../lib/backfill/runs';
import { BackfillSchedules } from '../lib/backfill/schedules';
import { authenticate, type KeyResolver } from './auth';
import { crosmosSurface } from './compat/crosmos';
import { memsolusSurface } from './compat/memsolus';
import { supermemorySurface } from './compat/supermemory';
import { synapSurface } from './compat/synap';
import { synapSdkSurface } from './compat/synap-sdk';
import { texAuth } from './compat/tex-auth';
import { texSurface } from './compat/tex';
import { errorHandler, jsonBody, jsonOnly, notFoundRoute } from './errors';
import { healthRoutes } from './health';
import { jobRoutes } from './jobs';
import { memoryRoutes } from './memories';
import { entityRoutes } from './entities';
import { nativeIngestRoutes } from './native';
import { documentedRoute, openApiRoutes } from './openapi';
import { searchRoutes } from './search';
import { sourceRoutes } from './sources';
import { webhookRoutes } from './webhooks';
import { WebhookStore } from '../lib/webhooks';
import { SpaceStore } from '../lib/spaces';
import { eraseTenant } from '../lib/tenant-erasure';
import { Leases } from '../lib/leases';
import { BodyMemory } from './body-memory';
import { indicesInPlace } from './indices-in-place';
import type { IndexSetup } from '../lib/elasticsearch/index-setup';
import { Sequences } from '../lib/sequences';
import { SourceStore } from '../lib/sources';
import type { SearchDeps } from '../lib/search/execute';

export interface ApiDeps {
  es: ElasticsearchClient;
  temporal: Connection;
  namespace: string;
  jobs: IngestJobs;
  /** Key resolvers tried in order (static keys first: no I/O); the stored-key resolver is appended. */
  keys: KeyResolver[];
  log: Logger;
  /** Memories index and embedder for POST /v1/search. */
  search: SearchDeps;
  /** Defaults to the aliases of the jobs' configured index prefix. */
  indices?: IndexNames;
  /** When set (defaults to the search embedder), an updated memory's text is re-embedded. */
  embedder?: Embedder;
  /** When set, an updated memory's type, dates and entities are read again from its new text, in its source's mode. */
  extractors?: Record<IngestMode, Extractor>;
  apiKeys?: ApiKeyStore;
  /** Set by the process: once true, /readyz answers 503 while in-flight requests finish. */
  shuttingDown?: () => boolean;
  /** The process's indices, when a read-only cluster may hold them back (requests wait for them). */
  indexSetup?: IndexSetup;
}


/** The HTTP app: thin routes that validate, authenticate and hand requests to jobs, memories and search. */
export function createApp(deps: ApiDeps): Express {
  const indices = deps.indices ?? indexNames(deps.jobs.config.ELASTICSEARCH_INDEX_PREFIX);
  const apiKeys = deps.apiKeys ?? new ApiKeyStore(deps.es, indices.apikeys);
  const keys = [...deps.keys, apiKeys];
  const memories = new MemoryStore(deps.es, indices, deps.embedder ?? deps.search.embedder, deps.search.embeddingMatch, deps.extractors);
  const listings = new JobListings(deps.jobs.client, deps.jobs, deps.namespace, deps.jobs.config.TEMPORAL_TASK_QUEUE);
  const memoryListings = new MemoryListings(deps.es, indices);
  const bodyMemory = new BodyMemory(deps.jobs.config.REQUEST_BODY_MEMORY_MB * 2 ** 20);
  const surface = { keys, log: deps.log, bodyMemory, indexSetup: deps.indexSetup };
  const leases = new Leases(deps.es, indices.sequences);
  const conversations = new ConversationLedger(deps.es, indices.sources, indices.memories, indices.jobs, leases, memories);
  const sequences = new Sequences(deps.es, indices.sequences);
  const sources = new SourceStore(deps.es, indices, deps.jobs, listings, leases);
  const entities = new EntityStore(deps.es, indices);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  const metrics = new ApiMetrics(deps.jobs, documentedRoute);
  app.use(metrics.middleware());
  app.get('/metrics', metrics.handler());
  app.use(healthRoutes({ es: deps.es, temporal: deps.temporal, namespace: deps.namespace, shuttingDown: deps.shuttingDown, embeddingMatch: deps.search.embeddingMatch }));
  app.use(openApiRoutes());

  // Each vendor surface under its own prefix, with its own auth and error shapes: a vendor's client
  // works by changing only its base URL.
  app.use('/compat/crosmos', crosmosSurface(surface, deps.jobs, deps.search, { sources, memories, listings: memoryListings, entities, spaces: new SpaceStore(deps.es, indices.spaces, sources) }));
  const supermemoryStores = { sources, jobListings: listings, memories, search: deps.search, listings: memoryListings };
  app.use('/compat/supermemory', supermemorySurface(surface, deps.jobs, conversations, supermemoryStores));
  app.use('/compat/tex', texAuth(surface.keys), texSurface(surface, deps.jobs, deps.es, indices, sequences, supermemoryStores));
  app.use('/compat/memsolus', memsolusSurface(surface, deps.jobs, listings));
  // The Python SDK's paths (/api/v1/…) before the seed's routes, whose surface answers 404 for the rest.
  app.use('/compat/synap/api', synapSdkSurface(surface, deps.jobs, memories, memoryListings, deps.es, indices.sources, deps.search));
  app.use('/compat/synap', synapSurface(surface, deps.jobs, memories, deps.es, indices.sources));

  app.use(indicesInPlace(deps.indexSetup));
  app.use(authenticate(keys));
  app.use(bodyMemory.reserve);
  app.use(jsonOnly(['/v1/files']));
  app.use(jsonBody());
  app.use(nativeIngestRoutes(deps.jobs, conversations, deps.log));
  app.use(jobRoutes(deps.jobs, listings));
  app.use(searchRoutes(deps.search));
  app.use(memoryRoutes(memories, memoryListings));
  app.use(entityRoutes(entities));
  app.use(sourceRoutes(sources));
  const schedules = new BackfillSchedules(deps.jobs.client, deps.jobs.config.TEMPORAL_TASK_QUEUE);
  app.use(adminRoutes(apiKeys, (tenant) => eraseTenant({ es: deps.es, indices, sources, jobs: deps.jobs, schedules, keys: apiKeys }, tenant)));
  app.use(webhookRoutes(new WebhookStore(deps.es, indices.webhooks, deps.jobs.config.CAIRN_ALLOW_PRIVATE_URLS)));
  app.use(scheduleRoutes(schedules));
  app.use(backfillRoutes(new BackfillRuns(deps.jobs.client, deps.jobs.config.TEMPORAL_TASK_QUEUE)));
  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
