import { Router } from 'express';
import { z } from 'zod';
import { MemoryUpdate, type MemoryStore } from '../lib/memories';
import { SCOPE_VALUE_FIELDS } from '../lib/search/filters';
import { SearchFilters } from '../lib/search/plan';
import { principalOf, requirePermission } from './auth';
import { idParam, parseWith, queryInt } from './errors';

/** Pages reach the first 10,000 entities (Elasticsearch's result window); narrow with q or type past that. */
const ENTITY_WINDOW = 10_000;

export const EntityListQuery = z
  .object({
    q: z.string().min(1).max(512).optional(),
    type: z.string().min(1).max(64).optional(),
    page: queryInt(1, 1000, 1),
    page_size: queryInt(1, 100, 20),
  })
  .refine((query) => query.page * query.page_size <= ENTITY_WINDOW, {
    message: `page × page_size may reach the first ${ENTITY_WINDOW} entities; narrow the list with q or type`,
    path: ['page'],
  });

/** A listing of memories: search's filters, without a query, newest first. */
export const MemoryListRequest = z
  .object({
    filters: SearchFilters.default({}),
    page_size: z.number().int().min(1).max(100).default(20),
    page_token: z.string().min(1).max(2048).optional(),
  })
  .strict();

/** The values a scope field takes (the tenant's users, agents, sessions…) on the memories search's filters match. */
export const ScopeListRequest = z
  .object({
    field: z.enum(SCOPE_VALUE_FIELDS),
    filters: SearchFilters.default({}),
    page_size: z.number().int().min(1).max(100).default(20),
    page_token: z.string().min(1).max(2048).optional(),
  })
  .strict();

export const ScopeListResponse = z.object({
  field: z.enum(SCOPE_VALUE_FIELDS),
  values: z.array(
    z.object({
      value: z.string(),
      memory_count: z.number().int(),
      source_count: z.number().int(),
      first_memory_at: z.string().nullable(),
      last_memory_at: z.string().nullable(),
    }),
  ),
  next_page_token: z.string().nullable(),
});

/** Memories (list, get, update with a merge strategy, delete) and entities (get, list), within the caller's tenant. */
export function memoryRoutes(memories: MemoryStore): Router {
  const router = Router();

  router.post('/v1/memories/list', requirePermission('read'), async (req, res) => {
    const request = parseWith(MemoryListRequest, req.body);
    res.json(await memories.list(principalOf(req).tenant, request.filters, request.page_size, request.page_token));
  });

  router.post('/v1/scopes/list', requirePermission('read'), async (req, res) => {
    const request = parseWith(ScopeListRequest, req.body);
    const page = await memories.scopeValues(principalOf(req).tenant, request.field, request.filters, request.page_size, request.page_token);
    res.json({ field: request.field, ...page });
  });

  router.get('/v1/memories/:id', requirePermission('read'), async (req, res) => {
    res.json(await memories.get(principalOf(req).tenant, idParam(req.params.id)));
  });

  router.patch('/v1/memories/:id', requirePermission('write'), async (req, res) => {
    const update = parseWith(MemoryUpdate, req.body);
    res.json(await memories.update(principalOf(req).tenant, idParam(req.params.id), update));
  });

  router.delete('/v1/memories/:id', requirePermission('write'), async (req, res) => {
    await memories.delete(principalOf(req).tenant, idParam(req.params.id));
    res.status(204).end();
  });

  router.get('/v1/entities', requirePermission('read'), async (req, res) => {
    const query = parseWith(EntityListQuery, req.query);
    const { entities, total } = await memories.entities(principalOf(req).tenant, {
      q: query.q,
      type: query.type,
      size: query.page_size,
      from: (query.page - 1) * query.page_size,
    });
    res.json({ entities, page: query.page, page_size: query.page_size, total });
  });

  router.get('/v1/entities/:id', requirePermission('read'), async (req, res) => {
    res.json(await memories.entity(principalOf(req).tenant, idParam(req.params.id)));
  });

  return router;
}
