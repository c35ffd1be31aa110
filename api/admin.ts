import { Router, type Request } from 'express';
import { z } from 'zod';
import { ApiKeyView, Permissions, type ApiKeyStore } from '../lib/apikeys';
import { TENANT_NAME } from '../lib/config';
import { forbidden } from '../lib/errors';
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

/**
 * The tenant whose keys a call administers: the caller's, or with `?tenant=` (operator key only)
 * another's; anyone else naming another tenant is refused.
 */
function tenantOf(req: Request, named: string | undefined): string {
  const principal = principalOf(req);
  if (named && named !== principal.tenant && !isOperatorKey(principal)) throw forbidden('admin on another tenant');
  return named ?? principal.tenant;
}

/** Key administration: mint (the clear key is shown once), list and revoke keys of the caller's tenant. */
export function adminRoutes(keys: ApiKeyStore): Router {
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

  return router;
}
