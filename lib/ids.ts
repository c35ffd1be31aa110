import { createHash } from 'node:crypto';
import { v7 as uuidV7, validate as isUuid, version as uuidVersion } from 'uuid';

/**
 * Ids derive from tenant + source + position/content, so a retried activity, a replayed workflow or a
 * re-sent job writes the same documents again instead of new ones.
 */
export function sha256(...parts: (string | number | undefined | null)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(part ?? ''));
    hash.update('\u0000');
  }
  return hash.digest('hex');
}

/** SHA-256 of the content's own bytes (never a text decoding of them), after `prefix` when one is given. */
export function contentHash(content: string | Uint8Array, prefix = ''): string {
  return createHash('sha256').update(prefix).update(content).digest('hex');
}

/**
 * A request's scope as part of a source key: '' when it has none (so unscoped sources keep their ids),
 * else its fields in a fixed order, container tags sorted.
 */
export function scopeKey(scope: Record<string, string | string[] | undefined> | undefined): string {
  const fields = Object.entries(scope ?? {})
    .filter(([, value]) => value !== undefined && (!Array.isArray(value) || value.length > 0))
    .map(([name, value]) => [name, Array.isArray(value) ? [...value].sort() : value] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return fields.length ? `${JSON.stringify(fields)}|` : '';
}

export const sourceId = (tenant: string, sourceKey: string) => `src_${sha256('source', tenant, sourceKey).slice(0, 32)}`;

export const memoryId = (tenant: string, source: string, position: string | number, text: string) =>
  `mem_${sha256('memory', tenant, source, position, text).slice(0, 32)}`;

export const entityId = (tenant: string, normalisedName: string) => `ent_${sha256('entity', tenant, normalisedName).slice(0, 32)}`;

/** Job ids are UUIDv7: random, with the time they were minted in their first 48 bits (jobIdMintedAt). */
export const newJobId = () => uuidV7();

/** When a job id was minted (ms since the epoch), if it is a UUIDv7; undefined for any other id. */
export function jobIdMintedAt(jobId: string): number | undefined {
  if (!isUuid(jobId) || uuidVersion(jobId) !== 7) return undefined;
  return parseInt(jobId.slice(0, 8) + jobId.slice(9, 13), 16);
}

/** Workflow ids embed the tenant, so one tenant can never address another tenant's job. */
export const ingestWorkflowId = (tenant: string, jobId: string) => `ingest/${tenant}/${jobId}`;

export function parseIngestWorkflowId(workflowId: string): { tenant: string; jobId: string } | undefined {
  const match = /^ingest\/(.+)\/([^/]+)$/.exec(workflowId);
  return match ? { tenant: match[1]!, jobId: match[2]! } : undefined;
}

/** Ids in UUID form, as Crosmos and Synap answer with them: a 128-bit id's hex (`src_…`, a job id) as a UUID. */
export const asUuid = (id: string) => {
  const hex = id.replace(/^[a-z]+_/, '').padEnd(32, '0').slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** An id given in the UUID form asUuid wrote it in, back as `<prefix>_<hex>`; any other id as it is. */
export const fromUuid = (prefix: string, id: string) => (UUID.test(id) ? `${prefix}_${id.replaceAll('-', '').toLowerCase()}` : id);

/** A source id, also given in the UUID form asUuid wrote it in (the Crosmos surface's `source_id`). */
export const sourceIdOf = (id: string) => fromUuid('src', id);
