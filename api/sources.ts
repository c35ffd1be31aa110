import { Router } from 'express';
import { z } from 'zod';
import { sourceIdOf } from '../lib/ids';
import type { SourceStore } from '../lib/sources';
import { principalOf, requirePermission } from './auth';
import { idParam, parseWith, queryInt } from './errors';
import { SearchFilters } from '../lib/search/plan';
import { DocumentType, Format, SourceKind } from '../lib/domain/ingest';
import { SourceResponse } from '../lib/domain/source';

/** Pages reach the first 10,000 sources (Elasticsearch's result window); narrow with the filters past that. */
const SOURCE_WINDOW = 10_000;

export const SourceListQuery = z
  .object({
    kind: SourceKind.optional(),
    format: Format.optional(),
    document_type: DocumentType.optional(),
    document_id: z.string().min(1).max(512).optional(),
    page: queryInt(1, 1000, 1),
    page_size: queryInt(1, 100, 20),
  })
  .refine((query) => query.page * query.page_size <= SOURCE_WINDOW, {
    message: `page × page_size may reach the first ${SOURCE_WINDOW} sources; narrow the list with its filters`,
    path: ['page'],
  });

export const SourceListResponse = z.object({ sources: z.array(SourceResponse), page: z.number().int(), page_size: z.number().int(), total: z.number().int() });

/** `POST /v1/sources/delete`: which sources go, by scope (as their memories carry it), ids or document ids — search's filters of those names. */
export const SourcesDeleteRequest = z
  .object({
    filters: SearchFilters.pick({
      space_id: true,
      org_id: true,
      user_id: true,
      customer_id: true,
      agent_id: true,
      session_id: true,
      container_tags: true,
      source_ids: true,
      document_ids: true,
    }).refine((filters) => Object.values(filters).some((value) => value !== undefined && !(Array.isArray(value) && value.length === 0)), {
      message: 'name at least one filter: a delete never matches every source of the tenant by default',
    }),
  })
  .strict();

/** A source (what was sent: its memories' provenance.source_id) read, or deleted with all derived from it. */
export function sourceRoutes(sources: SourceStore): Router {
  const router = Router();

  router.get('/v1/sources', requirePermission('read'), async (req, res) => {
    const { page, page_size: pageSize, ...filters } = parseWith(SourceListQuery, req.query);
    const { sources: listed, total } = await sources.list(principalOf(req).tenant, filters, { from: (page - 1) * pageSize, size: pageSize });
    res.json({ sources: listed, page, page_size: pageSize, total } satisfies z.infer<typeof SourceListResponse>);
  });

  router.post('/v1/sources/delete', requirePermission('write'), async (req, res) => {
    const { filters } = parseWith(SourcesDeleteRequest, req.body);
    res.json(await sources.deleteAll(principalOf(req).tenant, filters));
  });

  router.get('/v1/sources/:id', requirePermission('read'), async (req, res) => {
    res.json(await sources.get(principalOf(req).tenant, sourceIdOf(idParam(req.params.id))));
  });

  router.delete('/v1/sources/:id', requirePermission('write'), async (req, res) => {
    res.json(await sources.delete(principalOf(req).tenant, sourceIdOf(idParam(req.params.id))));
  });

  return router;
}
