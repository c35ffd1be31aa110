import type { PublicSource } from './domain/source';
import { IngestRequest } from './domain/ingest';
import { scopeFromWire } from './domain/scope';

// Source records (the sources index) as they are stored, and read back: as the API shows a source,
// and as the request that sends its current version again.

/** A source record as stored (lib/elasticsearch/mappings.ts: sourcesMapping), the fields read here. */
export interface StoredSource {
  id: string;
  tenant: string;
  kind?: string;
  format?: string;
  blob_key?: string | null;
  metadata?: Record<string, unknown>;
  /** A conversation kept by the ledger (lib/conversation-ledger.ts): one hash per message as last sent. */
  turn_hashes?: string[];
  document_type?: string;
  document_id?: string;
  document_date?: string | null;
  source_url?: string | null;
  file_name?: string | null;
  title?: string | null;
  categories?: string[] | null;
  mode?: string | null;
  metadata_json?: string | null;
  scope?: Record<string, unknown>;
  accepted_at?: string;
  version_at?: string;
  turn_count?: number;
  turn_jobs?: string[];
  last_job_id?: string;
  job_ids?: string[];
  created_at?: string;
  updated_at?: string;
}

/**
 * A source record read back as the request that sends its current version again: over its stored
 * upload, or its URL (fetched anew), with what it was last sent with. Not for a conversation kept by
 * the ledger (`turn_hashes`), which no one upload holds.
 */
export function requestOfRecord(tenant: string, source: StoredSource, surface: string) {
  // A version's claim writes every scope key, absent ones as null.
  const scope = Object.fromEntries(Object.entries(source.scope ?? {}).filter(([, value]) => value !== null && value !== undefined));
  return IngestRequest.safeParse({
    tenant,
    kind: source.kind,
    format: source.format,
    documentType: source.document_type,
    documentId: source.document_id,
    // A newer version clears what it was not sent with (null): absent here.
    documentDate: source.document_date ?? undefined,
    title: source.title ?? undefined,
    scope: scopeFromWire(scope),
    metadata: source.metadata_json ? JSON.parse(source.metadata_json) : source.metadata_json === null ? undefined : source.metadata,
    categories: source.categories ?? undefined,
    mode: source.mode ?? undefined,
    blobKey: source.blob_key ?? undefined,
    sourceUrl: source.blob_key ? undefined : (source.source_url ?? undefined),
    fileName: source.file_name ?? undefined,
    surface,
  });
}

/** A record as the API shows it (GET /v1/sources/:id), with the memories it has now. */
export function publicSource(source: StoredSource, memoryCount: number): PublicSource {
  const present = <T>(value: T | null | undefined) => value ?? undefined;
  return {
    id: source.id,
    kind: source.kind,
    format: source.format,
    document_type: source.document_type,
    document_id: source.document_id,
    document_date: present(source.document_date),
    source_url: present(source.source_url),
    file_name: present(source.file_name),
    title: present(source.title),
    categories: present(source.categories),
    mode: present(source.mode),
    metadata: source.metadata_json ? (JSON.parse(source.metadata_json) as Record<string, unknown>) : undefined,
    // The record's scope carries the tenant, which the caller's key already names.
    scope: source.scope ? Object.fromEntries(Object.entries(source.scope).filter(([field, value]) => field !== 'tenant' && value !== null && value !== undefined)) : undefined,
    turn_count: source.turn_count,
    version_at: source.version_at,
    last_job_id: source.last_job_id,
    memory_count: memoryCount,
    created_at: source.created_at,
    updated_at: source.updated_at,
  };
}
