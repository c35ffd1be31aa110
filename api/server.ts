import express, { type Express } from 'express';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import type { Connection } from '@temporalio/client';
import type { IngestJobs } from '../lib/jobs';
import type { Logger } from '../lib/logger';
import { authenticate, type KeyResolver } from './auth';
import { errorHandler, notFoundRoute } from './errors';
import { healthRoutes } from './health';
import { nativeRoutes } from './native';
import { searchRoutes } from './search';
import type { SearchDeps } from '../lib/search/execute';

export interface ApiDeps {
  es: ElasticsearchClient;
  temporal: Connection;
  namespace: string;
  jobs: IngestJobs;
  keys: KeyResolver[];
  log: Logger;
  /** Memories index and embedder for POST /v1/search. */
  search: SearchDeps;
}

/** The HTTP app: thin routes that validate, authenticate and hand requests to jobs and search. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.use(express.json({ limit: '6mb' }));
  app.use(healthRoutes({ es: deps.es, temporal: deps.temporal, namespace: deps.namespace }));
  app.use(authenticate(deps.keys));
  app.use(nativeRoutes(deps.jobs));
  app.use(searchRoutes(deps.search));
  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
