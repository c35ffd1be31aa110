import { Router } from 'express';
import { z } from 'zod';
import { MemoryUpdate, type MemoryStore } from '../lib/memories';
import { ScopeValue, type MemoryListings } from '../lib/memory-listings';
import { SCOPE_VALUE_FIELDS } from '../lib/search/filters';
import { SearchFilters } from '../lib/search/plan';
import { principalOf, requirePermission } from './auth';
import { idParam, parseWith } from './errors';

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
  values: z.array(ScopeValue),
  next_page_token: z.string().nullable(),
});

/** Memories (list, get, update with a merge strategy, delete) and the values of their scopes, within the caller's tenant. */
export function memoryRoutes(memories: MemoryStore, listings: MemoryListings): Router {
  const router = Router();

  router.post('/v1/memories/list', requirePermission('read'), async (req, res) => {
    const request = parseWith(MemoryListRequest, req.body);
    res.json(await listings.list(principalOf(req).tenant, request.filters, request.page_size, request.page_token));
  });

  router.post('/v1/scopes/list', requirePermission('read'), async (req, res) => {
    const request = parseWith(ScopeListRequest, req.body);
    const page = await listings.scopeValues(principalOf(req).tenant, request.field, request.filters, request.page_size, request.page_token);
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

  return router;
}
