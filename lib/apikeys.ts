import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { z } from 'zod';
import { getDocument } from './elasticsearch/client';
import { notFound } from './errors';
import { within } from './promises';

/** What a key may do: ingest, read jobs/memories/entities, search, write (update/delete), admin (keys). */
export const PERMISSIONS = ['ingest', 'read', 'search', 'write', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface Principal {
  tenant: string;
  keyId: string;
  permissions: ReadonlySet<Permission>;
  /** The deployment's operator key (CAIRN_API_KEY): may administer keys of any tenant. */
  operator?: boolean;
}

/** Looks a presented key up; implementations keep only hashes. */
export interface KeyResolver {
  resolve(key: string): Promise<Principal | undefined>;
}

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

/**
 * API keys minted through the admin endpoint, stored in the apikeys index. Only a SHA-256 hash of
 * the key is kept; the clear key is shown once, when it is created.
 *
 * A key reads `cairn_<id>_<secret>`: the id names the stored document, so resolving a key is one
 * realtime GET by id (no search, no refresh lag), and the hash comparison is constant-time.
 */
export const Permissions = z.array(z.enum(PERMISSIONS)).min(1);

/** A key as the API shows it: never the key itself (shown once, at creation) nor its hash. */
export const ApiKeyView = z.object({
  id: z.string(),
  tenant: z.string(),
  /** The key's first characters (`cairn_<id>`), to recognise it by. */
  prefix: z.string(),
  name: z.string().optional(),
  permissions: z.array(z.enum(PERMISSIONS)),
  created_at: z.string(),
  revoked_at: z.string().nullable().optional(),
});
export type ApiKeyView = z.infer<typeof ApiKeyView>;

export type StoredApiKey = ApiKeyView & { key_hash: string };

const KEY_PATTERN = /^cairn_([0-9a-f]{16})_([A-Za-z0-9_-]{20,})$/;
/**
 * Resolved keys are cached briefly so the ingest hot path makes no Elasticsearch round trip per
 * request. A revoke clears the cache of the replica that served it at once; other replicas stop
 * honouring the key within this time.
 */
const CACHE_TTL_MS = 5_000;
/**
 * A key in use is read again in the background once its entry is this old, while the entry still
 * answers: a busy key's requests never wait for Elasticsearch, and each read starts a new TTL (a
 * revoke still shows within CACHE_TTL_MS, the age of the entry that last honoured it).
 */
const REFRESH_AFTER_MS = 3_000;
/**
 * With Elasticsearch down (a read that fails, or has not answered within STALE_ANSWER_MS), a key this
 * process honoured in the last hour is honoured as it last read: ingests are still accepted with
 * Elasticsearch down, whichever key sends them (the jobs wait for it). A key revoked through another
 * replica during that hour, and not read here since, is honoured until Elasticsearch answers again.
 */
const STALE_IF_DOWN_MS = 60 * 60_000;
const STALE_ANSWER_MS = 2_000;

interface CachedKey {
  principal: Principal | undefined;
  readAt: number;
}

export class ApiKeyStore implements KeyResolver {
  private readonly cache = new Map<string, CachedKey>();
  /** Lookups under way, by key hash: requests that miss the cache at once share one read. */
  private readonly reading = new Map<string, { id: string; read: Promise<Principal | undefined> }>();
  /** Bumped by every revoke: a lookup that started before one does not cache what it read. */
  private revocations = 0;

  constructor(
    private readonly es: Client,
    private readonly index: string,
    private readonly now: () => number = Date.now,
  ) {}

  async create(input: { tenant: string; name?: string; permissions: Permission[] }): Promise<{ key: string; record: ApiKeyView }> {
    const id = randomBytes(8).toString('hex');
    const key = `cairn_${id}_${randomBytes(24).toString('base64url')}`;
    const record: StoredApiKey = {
      id,
      tenant: input.tenant,
      key_hash: hashKey(key),
      prefix: key.slice(0, 'cairn_'.length + 16),
      name: input.name,
      permissions: [...new Set(input.permissions)],
      created_at: new Date().toISOString(),
      revoked_at: null,
    };
    await this.es.index({ index: this.index, id, document: record, op_type: 'create', refresh: 'wait_for' });
    return { key, record: view(record) };
  }

  async list(tenant: string): Promise<ApiKeyView[]> {
    const result = await this.es.search<StoredApiKey>({
      index: this.index,
      query: { bool: { filter: [{ term: { tenant } }] } },
      sort: [{ created_at: 'desc' }],
      size: 1000,
    });
    return result.hits.hits.map((hit) => view(hit._source!));
  }

  /** Revokes a key of the caller's tenant; another tenant's key answers not found. */
  async revoke(tenant: string, id: string): Promise<ApiKeyView> {
    const record = await this.get(id);
    if (!record || record.tenant !== tenant) throw notFound(`API key ${id}`);
    if (!record.revoked_at) {
      record.revoked_at = new Date().toISOString();
      // Two revokes of one key at once both write it: the later is applied again, not a 500.
      await this.es.update({ index: this.index, id, doc: { revoked_at: record.revoked_at }, retry_on_conflict: 3, refresh: 'wait_for' });
    }
    this.revocations += 1;
    for (const [hash, entry] of this.cache) if (entry.principal?.keyId === id) this.cache.delete(hash);
    // A read that started before the revoke answers those who asked then; later requests read again.
    for (const [hash, under] of this.reading) if (under.id === id) this.reading.delete(hash);
    return view(record);
  }

  async resolve(key: string): Promise<Principal | undefined> {
    const match = KEY_PATTERN.exec(key);
    if (!match) return undefined;
    const hash = hashKey(key);
    const cached = this.cache.get(hash);
    const age = cached ? this.now() - cached.readAt : Infinity;
    if (cached && age < CACHE_TTL_MS) {
      // Requests past the refresh age join the one read under way (lookup). A failed refresh leaves the
      // entry to expire as it would have; the next request reads again.
      if (cached.principal && age >= REFRESH_AFTER_MS) this.lookup(hash, match[1]!).catch(() => undefined);
      return cached.principal;
    }
    if (!cached?.principal || age >= STALE_IF_DOWN_MS) return this.lookup(hash, match[1]!);
    const stale = cached.principal;
    return within(this.lookup(hash, match[1]!), STALE_ANSWER_MS, () => stale).catch(() => stale);
  }

  /** Reads a key's record (one read per key at a time) and caches what it makes of it. */
  private lookup(hash: string, id: string): Promise<Principal | undefined> {
    const under = this.reading.get(hash);
    if (under) return under.read;
    const read = (async () => {
      const revocations = this.revocations;
      const readAt = this.now();
      const record = await this.get(id);
      let principal: Principal | undefined;
      if (record && !record.revoked_at && timingSafeEqual(Buffer.from(record.key_hash, 'hex'), Buffer.from(hash, 'hex'))) {
        principal = { tenant: record.tenant, keyId: record.id, permissions: new Set(record.permissions) };
      }
      if (this.revocations !== revocations) {
        this.cache.delete(hash);
        return principal;
      }
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, { principal, readAt });
      return principal;
    })().finally(() => {
      if (this.reading.get(hash)?.read === read) this.reading.delete(hash);
    });
    this.reading.set(hash, { id, read });
    return read;
  }

  private async get(id: string): Promise<StoredApiKey | undefined> {
    return (await getDocument<StoredApiKey>(this.es, { index: this.index, id }))?.source;
  }
}

function view({ key_hash: _hash, ...rest }: StoredApiKey): ApiKeyView {
  return rest;
}
