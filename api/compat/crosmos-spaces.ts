import type { Router } from 'express';
import { z } from 'zod';
import { Metadata } from '../../lib/domain/ingest';
import type { Space, SpaceStore } from '../../lib/spaces';
import { principalOf, requirePermission } from '../auth';
import { parseQuery, parseWith, queryInt } from '../errors';
import { WireUuid } from './surface';

/**
 * The Crosmos SDK's spaces (`spaces.create/list/get/delete`, `/api/v1/spaces`, outside the seed; shapes
 * from its 0.2 models): a name for a space id, unique within the tenant (Crosmos' organisation,
 * `org_id`). Naming a space is optional, as every other route takes any space id.
 */
export const CrosmosSpaceCreateRequest = z.object({
  name: z.string().trim().min(1).max(255),
  description: z.string().max(10_000).nullish(),
  meta: Metadata.nullish(),
});

/** Crosmos' listings page by offset, and reach the first 10,000 items (Elasticsearch's result window). */
const WINDOW = 10_000;
export const CrosmosPage = { limit: queryInt(1, 100, 20), offset: queryInt(0, WINDOW, 0) };

export function pageWithinWindow(query: { offset: number; limit: number }, ctx: z.RefinementCtx): void {
  if (query.offset + query.limit > WINDOW) ctx.addIssue({ code: 'custom', message: `offset + limit may reach the first ${WINDOW} items`, path: ['offset'] });
}

export const CrosmosSpaceListQuery = z.object({ ...CrosmosPage, name: z.string().min(1).max(255).optional() }).superRefine(pageWithinWindow);

export const CrosmosSpace = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  meta: z.record(z.string(), z.unknown()).nullable(),
  org_id: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const CrosmosSpaceList = z.object({ spaces: z.array(CrosmosSpace), total: z.number().int() });

const crosmosSpace = (space: Space): z.infer<typeof CrosmosSpace> => ({
  id: space.id,
  name: space.name,
  description: space.description ?? null,
  meta: space.meta ?? null,
  org_id: space.tenant,
  created_at: space.created_at,
  updated_at: space.updated_at,
});

const spaceIdOf = (raw: unknown) => parseWith(WireUuid, raw, 'space_uuid (path)', 'space_uuid');

export function crosmosSpaceRoutes(router: Router, spaces: SpaceStore): void {
  router.post('/api/v1/spaces', requirePermission('write'), async (req, res) => {
    const body = parseWith(CrosmosSpaceCreateRequest, req.body);
    res.status(201).json(crosmosSpace(await spaces.create(principalOf(req).tenant, body)));
  });

  router.get('/api/v1/spaces', requirePermission('read'), async (req, res) => {
    const query = parseQuery(CrosmosSpaceListQuery, req.query);
    const { spaces: page, total } = await spaces.list(principalOf(req).tenant, { name: query.name, from: query.offset, size: query.limit });
    res.json({ spaces: page.map(crosmosSpace), total } satisfies z.infer<typeof CrosmosSpaceList>);
  });

  router.get('/api/v1/spaces/:space_uuid', requirePermission('read'), async (req, res) => {
    res.json(crosmosSpace(await spaces.get(principalOf(req).tenant, spaceIdOf(req.params.space_uuid))));
  });

  // With everything filed under it, as deleting each of its sources would; 409 while a job of one runs.
  router.delete('/api/v1/spaces/:space_uuid', requirePermission('write'), async (req, res) => {
    await spaces.delete(principalOf(req).tenant, spaceIdOf(req.params.space_uuid));
    res.status(204).end();
  });
}
