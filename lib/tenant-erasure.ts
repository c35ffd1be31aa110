import type { Client } from '@elastic/elasticsearch';
import type { ApiKeyStore } from './apikeys';
import type { BackfillSchedules } from './backfill/schedules';
import { deleteMatching } from './elasticsearch/matching-writes';
import type { IndexNames } from './elasticsearch/indices';
import type { IngestJobs } from './jobs';
import type { SourceStore } from './sources';

/** What erasing a tenant removed. */
export interface TenantErasure {
  tenant: string;
  sources_deleted: number;
  memories_deleted: number;
  entities_deleted: number;
  job_summaries_deleted: number;
  keys_deleted: number;
  webhooks_deleted: number;
  spaces_deleted: number;
  schedules_deleted: number;
}

export interface TenantErasureDeps {
  es: Client;
  indices: IndexNames;
  sources: SourceStore;
  jobs: IngestJobs;
  schedules: BackfillSchedules;
  keys: ApiKeyStore;
}

/** How many rounds of SourceStore.deleteAll (each up to its BULK sources) one erasure runs. */
const SOURCE_ROUNDS = 200;

/** The indices holding a tenant's data beside its sources, each document naming its tenant. */
const TENANT_INDICES = ['memories', 'entities', 'tombstones', 'sequences', 'spaces', 'webhooks', 'jobs', 'apikeys', 'deletions'] as const satisfies readonly (keyof IndexNames)[];

/**
 * Everything a tenant has in Cairn, gone: every source as DELETE /v1/sources/:id deletes one (its
 * memories, mentions in entities and stored content), then what no source holds — entities, the
 * tombstones of deleted memories, counters, named spaces, webhooks, the jobs' summaries and their
 * stored content, the minted API keys (keys set in the environment are configuration, not data) —
 * and its backfill schedules. Refused (409) while a job of the tenant is queued or running: it would
 * write again after the answer. Idempotent: sent again after a failure, it finishes the work.
 * Temporal keeps the finished workflows' histories (ids, scope, metadata; never text) for its
 * namespace's retention.
 */
export async function eraseTenant(deps: TenantErasureDeps, tenant: string): Promise<TenantErasure> {
  const first = await deps.sources.deleteEvery(tenant, {}, `tenant ${tenant}`, SOURCE_ROUNDS);
  // Revoked once nothing is refused, through the store (this process's cache of them goes at once, as
  // with any revoke); then the sources a request let in meanwhile go too.
  for (const key of await deps.keys.list(tenant)) await deps.keys.revoke(tenant, key.id);
  const last = await deps.sources.deleteEvery(tenant, {}, `tenant ${tenant}`, SOURCE_ROUNDS);
  const schedules = await deps.schedules.list(tenant);
  for (const schedule of schedules) await deps.schedules.delete(tenant, schedule.id);
  await dropJobContent(deps, tenant);
  const ofTenant = { bool: { filter: [{ term: { tenant } }] } };
  const deleted: Partial<Record<(typeof TENANT_INDICES)[number], number>> = {};
  await deps.es.indices.refresh({ index: TENANT_INDICES.map((name) => deps.indices[name]) });
  for (const name of TENANT_INDICES) deleted[name] = await deleteMatching(deps.es, deps.indices[name], ofTenant, `tenant ${tenant}'s ${name}`);
  return {
    tenant,
    sources_deleted: first.sources_deleted + last.sources_deleted,
    memories_deleted: first.memories_deleted + last.memories_deleted + (deleted.memories ?? 0),
    entities_deleted: deleted.entities ?? 0,
    job_summaries_deleted: deleted.jobs ?? 0,
    keys_deleted: deleted.apikeys ?? 0,
    webhooks_deleted: deleted.webhooks ?? 0,
    spaces_deleted: deleted.spaces ?? 0,
    schedules_deleted: schedules.length,
  };
}

/** The stored content of every job the tenant's summaries name (a deleted source's is gone already). */
async function dropJobContent(deps: TenantErasureDeps, tenant: string): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = await deps.es.search<{ job_id: string }>({
      index: deps.indices.jobs,
      query: { bool: { filter: [{ term: { tenant } }] } },
      sort: [{ job_id: 'asc' }],
      size: 1000,
      _source: ['job_id'],
      ...(after ? { search_after: [after] } : {}),
    });
    const ids = page.hits.hits.flatMap((hit) => (hit._source?.job_id ? [hit._source.job_id] : []));
    if (ids.length === 0) return;
    await deps.jobs.dropContent(tenant, ids);
    after = ids[ids.length - 1];
  }
}
