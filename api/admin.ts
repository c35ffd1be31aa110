import { Router, type Request } from 'express';
import { z } from 'zod';
import { ApiKeyView, Permissions, type ApiKeyStore } from '../lib/apikeys';
import { TENANT_NAME } from '../lib/config';
import { badInput, forbidden } from '../lib/errors';
import type { TenantErasure } from '../lib/tenant-erasure';
import { isOperatorKey, principalOf, requirePermission } from './auth';
import { parseWith } from './errors';

export const CreateKeyRequest = z.object({
  name: z.string().min(1).max(255).optional(),
  permissions: Permissions.default(['ingest', 'read', 'search']),
  /** Only the operator key (CAIRN_API_KEY) may mint keys for another tenant. */
  tenant: z.string().regex(TENANT_NAME, 'letters, digits, . _ - (at most 64, not only dots)').optional(),
});

export const TenantQuery = z.object({ tenant: CreateKeyRequest.shape.tenant });

/** A new key: the clear key is in this answer only. */
export const CreatedKey = ApiKeyView.extend({ key: z.string() });
export const KeyList = z.object({ keys: z.array(ApiKeyView) });

/** Erasing a tenant is confirmed by naming it twice: in the path and as `?confirm=`. */
export const EraseTenantQuery = z.object({ confirm: z.string().max(64).optional() });
export const ErasedTenant = z.object({
  tenant: z.string(),
  sources_deleted: z.number().int(),
  memories_deleted: z.number().int(),
  entities_deleted: z.number().int(),
  job_summaries_deleted: z.number().int(),
  keys_deleted: z.number().int(),
  webhooks_deleted: z.number().int(),
  spaces_deleted: z.number().int(),
  schedules_deleted: z.number().int(),
});

/**
 * The tenant whose keys a call administers: the caller's, or with `?tenant=` (operator key only)
 * another's; anyone else naming another tenant is refused.
 */
function tenantOf(req: Request, named: string | undefined): string {
  const principal = principalOf(req);
  if (named && named !== principal.tenant && !isOperatorKey(principal)) throw forbidden('admin on another tenant');
  return named ?? principal.tenant;
}

/**
 * Key administration: mint (the clear key is shown once), list and revoke keys of the caller's tenant;
 * and erasing a tenant's data whole (lib/tenant-erasure.ts).
 */
export function adminRoutes(keys: ApiKeyStore, erase: (tenant: string) => Promise<TenantErasure>): Router {
  const router = Router();
  const admin = requirePermission('admin');

  router.post('/v1/admin/keys', admin, async (req, res) => {
    const body = parseWith(CreateKeyRequest, req.body);
    const { key, record } = await keys.create({ tenant: tenantOf(req, body.tenant), name: body.name, permissions: body.permissions });
    res.status(201).json({ ...record, key });
  });

  router.get('/v1/admin/keys', admin, async (req, res) => {
    res.json({ keys: await keys.list(tenantOf(req, parseWith(TenantQuery, req.query).tenant)) });
  });

  router.delete('/v1/admin/keys/:id', admin, async (req, res) => {
    const id = parseWith(z.string().regex(/^[0-9a-f]{16}$/, 'not a key id'), req.params.id, 'id (path)');
    res.json(await keys.revoke(tenantOf(req, parseWith(TenantQuery, req.query).tenant), id));
  });

  router.delete('/v1/admin/tenants/:tenant', admin, async (req, res) => {
    const tenant = tenantOf(req, parseWith(CreateKeyRequest.shape.tenant.unwrap(), req.params.tenant, 'tenant (path)', 'tenant'));
    if (parseWith(EraseTenantQuery, req.query).confirm !== tenant) {
      throw badInput(`erasing a tenant deletes all of its data for good: confirm it by sending ?confirm=${tenant}`);
    }
    res.json(await erase(tenant));
  });

  return router;
}
