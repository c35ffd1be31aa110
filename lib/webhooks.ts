import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { request } from 'undici';
import { z } from 'zod';
import { assertFetchableUrl, assertResolvesPublic, guardedAgent, type LookupAll } from './outbound';
import type { JobProgress } from './domain/job';
import { WEBHOOK_EVENTS, type WebhookEvent } from './domain/webhook-event';
import { getDocument } from './elasticsearch/client';
import { badInput, notFound, upstreamFailure } from './errors';

/**
 * Webhooks: a tenant subscribes a URL to job events and Cairn POSTs each event there when a job ends,
 * so a client need not poll job status (Synap's "use the Ingestion Status endpoint or webhooks").
 *
 * Deliveries follow the Standard Webhooks specification (standardwebhooks.com), so receivers can
 * verify them with its libraries: headers `webhook-id` (the event id: the same on every retry, to
 * deduplicate on), `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the base64 part of the `whsec_` secret).
 */
/** At most this many subscriptions per tenant: each one is a delivery per finished job. */
export const MAX_WEBHOOKS_PER_TENANT = 20;
const overTheLimit = () => badInput(`a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks: delete one first`);

export const CreateWebhookRequest = z.object({
  url: z.string().min(1).max(2048),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).default([...WEBHOOK_EVENTS]),
  description: z.string().max(500).optional(),
});
export type CreateWebhookRequest = z.infer<typeof CreateWebhookRequest>;

export interface StoredWebhook {
  id: string;
  tenant: string;
  url: string;
  events: WebhookEvent[];
  description?: string;
  secret: string;
  created_at: string;
}

export const WebhookView = z.object({
  id: z.string(),
  tenant: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  description: z.string().optional(),
  created_at: z.string(),
});
export type WebhookView = z.infer<typeof WebhookView>;
/** The answer to a create: the subscription and its signing secret, shown this once. */
export const CreatedWebhook = WebhookView.extend({ secret: z.string() });

/** What a job's end sends: `data` is the job as GET /v1/jobs/:id answers it. */
export interface WebhookPayload {
  type: WebhookEvent;
  timestamp: string;
  data: JobProgress;
}

/** The same for every attempt and every replay of one run's end: receivers deduplicate on it. */
export const webhookEventId = (tenant: string, jobId: string, runId: string, event: WebhookEvent) =>
  `evt_${createHash('sha256').update(`${tenant}\n${jobId}\n${runId}\n${event}`).digest('hex').slice(0, 32)}`;

/** The Standard Webhooks signature of one delivery. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * A URL Cairn may deliver to: http(s), no credentials, and unless private targets are allowed
 * (CAIRN_ALLOW_PRIVATE_URLS, for local use) no loopback, private, link-local or metadata address — the
 * same guard as URL ingestion, and again at delivery time after DNS resolution.
 */
export function assertDeliverableUrl(raw: string, allowPrivate: boolean): string {
  return assertFetchableUrl(raw, allowPrivate).href;
}

/** Subscriptions kept in the webhooks index, one document each, confined to their tenant. */
export class WebhookStore {
  /** Subscriptions by tenant, briefly: a job's end asks without a search each time. */
  private readonly cache = new Map<string, { hooks: StoredWebhook[]; expires: number }>();

  constructor(
    private readonly es: Client,
    private readonly index: string,
    private readonly allowPrivate: boolean,
    private readonly cacheMs = 5_000,
    /** How host names are resolved when a webhook is created (the system resolver unless a test names another). */
    private readonly resolve?: LookupAll,
  ) {}

  async create(tenant: string, input: CreateWebhookRequest): Promise<{ record: WebhookView; secret: string }> {
    const url = assertDeliverableUrl(input.url, this.allowPrivate);
    await assertResolvesPublic(new URL(url), this.allowPrivate, this.resolve);
    if ((await this.search(tenant)).length >= MAX_WEBHOOKS_PER_TENANT) {
      throw overTheLimit();
    }
    const record: StoredWebhook = {
      id: `wh_${randomBytes(8).toString('hex')}`,
      tenant,
      url,
      events: [...new Set(input.events)],
      description: input.description,
      secret: `whsec_${randomBytes(24).toString('base64')}`,
      created_at: new Date().toISOString(),
    };
    await this.es.index({ index: this.index, id: record.id, document: record, op_type: 'create', refresh: 'wait_for' });
    this.cache.delete(tenant);
    // Creates racing past the count above: the earliest (created_at, then id) keep their places and a
    // later one over the limit takes itself back, so a burst cannot leave the tenant over it.
    const place = (await this.search(tenant)).findIndex((hook) => hook.id === record.id);
    if (place >= MAX_WEBHOOKS_PER_TENANT) {
      await this.es.delete({ index: this.index, id: record.id, refresh: 'wait_for' }, { ignore: [404] });
      throw overTheLimit();
    }
    return { record: view(record), secret: record.secret };
  }

  async list(tenant: string): Promise<WebhookView[]> {
    return (await this.search(tenant)).map(view);
  }

  async get(tenant: string, id: string): Promise<WebhookView> {
    const record = await this.stored(tenant, id);
    if (!record) throw notFound(`webhook ${id}`);
    return view(record);
  }

  async delete(tenant: string, id: string): Promise<void> {
    if (!(await this.stored(tenant, id))) throw notFound(`webhook ${id}`);
    await this.es.delete({ index: this.index, id, refresh: 'wait_for' }, { ignore: [404] });
    this.cache.delete(tenant);
  }

  /** The tenant's subscription, read by id (realtime: a deleted one is gone at once), or undefined. */
  async stored(tenant: string, id: string): Promise<StoredWebhook | undefined> {
    return (await getDocument<StoredWebhook>(this.es, { index: this.index, id }, tenant))?.source;
  }

  /**
   * Ids of the tenant's subscriptions to an event. Cached for a few seconds per process: a new
   * subscription hears of jobs that end from then on, give or take that long.
   */
  async subscribedTo(tenant: string, event: WebhookEvent): Promise<string[]> {
    const cached = this.cache.get(tenant);
    let hooks = cached && cached.expires > Date.now() ? cached.hooks : undefined;
    if (!hooks) {
      hooks = await this.search(tenant);
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(tenant, { hooks, expires: Date.now() + this.cacheMs });
    }
    return hooks.filter((hook) => hook.events.includes(event)).map((hook) => hook.id);
  }

  private async search(tenant: string): Promise<StoredWebhook[]> {
    const result = await this.es.search<StoredWebhook>({
      index: this.index,
      query: { bool: { filter: [{ term: { tenant } }] } },
      // Oldest first, ties by id: the order in which creates keep their places (create).
      sort: [{ created_at: 'asc' }, { id: 'asc' }],
      size: MAX_WEBHOOKS_PER_TENANT * 2,
    });
    return result.hits.hits.map((hit) => hit._source!);
  }
}

function view({ secret: _secret, ...rest }: StoredWebhook): WebhookView {
  return rest;
}

const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * POSTs one event to one subscription. A 2xx is delivered; anything else (another status, a refused
 * connection, a timeout) is an upstream failure for the caller to retry. Redirects are not followed:
 * the subscription names where events go. A URL that resolves to a refused address is bad input
 * (retrying does not change where it points).
 */
export async function deliverWebhook(hook: StoredWebhook, id: string, payload: WebhookPayload, allowPrivate: boolean): Promise<{ status: number }> {
  const url = assertFetchableUrl(hook.url, allowPrivate);
  const body = JSON.stringify(payload);
  const timestamp = Math.floor(Date.now() / 1000);
  const dispatcher = guardedAgent(allowPrivate);
  try {
    const response = await request(url, {
      method: 'POST',
      dispatcher,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Cairn-Webhooks/0.1',
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(hook.secret, id, timestamp, body),
      },
      body,
    });
    await response.body.dump();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw upstreamFailure(`webhook ${hook.id} (${url.origin}) answered ${response.statusCode}`);
    }
    return { status: response.statusCode };
  } catch (error) {
    const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'CAIRN_SSRF_REFUSED') throw badInput(`webhook ${hook.id}: ${url.host} resolves to a loopback, private, link-local or metadata address`);
    if (error instanceof Error && error.name === 'CairnError') throw error;
    throw upstreamFailure(`webhook ${hook.id} (${url.origin}) could not be reached: ${(error as Error).message}`);
  } finally {
    await dispatcher.close();
  }
}
