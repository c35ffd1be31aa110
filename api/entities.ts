import { Router } from 'express';
import { z } from 'zod';
import { Entity } from '../lib/entities/entity';
import type { EntityStore } from '../lib/entities/store';
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

export const EntityListResponse = z.object({ entities: z.array(Entity), page: z.number().int(), page_size: z.number().int(), total: z.number().int() });

/** Entities (the people, places, organisations… memories name), read within the caller's tenant. */
export function entityRoutes(entities: EntityStore): Router {
  const router = Router();

  router.get('/v1/entities', requirePermission('read'), async (req, res) => {
    const query = parseWith(EntityListQuery, req.query);
    const { entities: page, total } = await entities.list(principalOf(req).tenant, {
      q: query.q,
      type: query.type,
      size: query.page_size,
      from: (query.page - 1) * query.page_size,
    });
    res.json({ entities: page, page: query.page, page_size: query.page_size, total } satisfies z.infer<typeof EntityListResponse>);
  });

  router.get('/v1/entities/:id', requirePermission('read'), async (req, res) => {
    res.json(await entities.get(principalOf(req).tenant, idParam(req.params.id)));
  });

  return router;
}
