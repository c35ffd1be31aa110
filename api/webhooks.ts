import { Router } from 'express';
import { z } from 'zod';
import { CreateWebhookRequest, WebhookView, type WebhookStore } from '../lib/webhooks';
import { principalOf, requirePermission } from './auth';
import { parseWith } from './errors';

export const WebhookList = z.object({ webhooks: z.array(WebhookView) });

const webhookIdParam = (value: unknown) => parseWith(z.string().regex(/^wh_[0-9a-f]{16}$/, 'not a webhook id'), value, 'id (path)');

/**
 * Webhook subscriptions of the caller's tenant (admin permission): create (the signing secret is
 * shown once), list, get and delete. Deliveries are described in lib/webhooks.ts.
 */
export function webhookRoutes(webhooks: WebhookStore): Router {
  const router = Router();
  const admin = requirePermission('admin');

  router.post('/v1/webhooks', admin, async (req, res) => {
    const { record, secret } = await webhooks.create(principalOf(req).tenant, parseWith(CreateWebhookRequest, req.body));
    res.status(201).json({ ...record, secret });
  });

  router.get('/v1/webhooks', admin, async (req, res) => {
    res.json({ webhooks: await webhooks.list(principalOf(req).tenant) });
  });

  router.get('/v1/webhooks/:id', admin, async (req, res) => {
    res.json(await webhooks.get(principalOf(req).tenant, webhookIdParam(req.params.id)));
  });

  router.delete('/v1/webhooks/:id', admin, async (req, res) => {
    await webhooks.delete(principalOf(req).tenant, webhookIdParam(req.params.id));
    res.status(204).end();
  });

  return router;
}
