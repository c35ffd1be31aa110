import type { Client } from '@elastic/elasticsearch';
import type { Router } from 'express';
import type { IndexNames } from '../../lib/elasticsearch/indices';
import type { IngestJobs } from '../../lib/jobs';
import type { Sequences } from '../../lib/sequences';
import { requirePermission } from '../auth';
import { parseWith } from '../errors';
import type { SupermemoryStores } from './supermemory';
import { DeletionReceipts } from '../../lib/deletion-receipts';
import { texDeletionRoutes } from './tex-deletions';
import { texDocumentRoutes } from './tex-documents';
import { texEpisodeRoutes } from './tex-episodes';
import { texPreferenceRoutes } from './tex-preferences';
import { texRecallRoutes } from './tex-recall';
import { rememberTurns, TexIngestRequest, type TexWriteDeps } from './tex-remember';
import { texTurnRoutes } from './tex-turns';
import { compatSurface, fastApiErrors, type SurfaceDeps } from './surface';

/**
 * The seed's own curl example writes the scope as flat keys ("scope.org_id": …) while its body
 * reference nests them ({scope: {org_id}}): both are read, nested keys winning.
 */
const foldDottedScope = (body: unknown) => {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const flat = Object.entries(body).filter(([key]) => key.startsWith('scope.'));
  if (flat.length === 0) return body;
  const rest = Object.fromEntries(Object.entries(body).filter(([key]) => !key.startsWith('scope.')));
  const nested = rest.scope && typeof rest.scope === 'object' ? (rest.scope as Record<string, unknown>) : {};
  return { ...rest, scope: { ...Object.fromEntries(flat.map(([key, value]) => [key.slice('scope.'.length), value])), ...nested } };
};

export function texSurface(
  deps: SurfaceDeps,
  jobs: IngestJobs,
  es: Client,
  indices: Pick<IndexNames, 'memories' | 'tombstones' | 'deletions'>,
  sequences: Sequences,
  stores: SupermemoryStores,
): Router {
  const writes: TexWriteDeps = { jobs, es, indices, sequences, log: deps.log };
  return compatSurface(deps, fastApiErrors, (router) => {
    texRecallRoutes(router, stores.search);
    texTurnRoutes(router, jobs, stores.memories);
    texDocumentRoutes(router, jobs, stores);
    texEpisodeRoutes(router, writes, stores.listings);
    texPreferenceRoutes(router, jobs);
    texDeletionRoutes(router, jobs, stores.sources, stores.memories, new DeletionReceipts(es, indices.deletions));
    router.post('/ingestion/memory', requirePermission('ingest'), async (req, res) => {
      res.status(202).json(await rememberTurns(writes, req, parseWith(TexIngestRequest, foldDottedScope(req.body))));
    });
  });
}
