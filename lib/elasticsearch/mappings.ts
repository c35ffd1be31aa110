import type { estypes } from '@elastic/elasticsearch';

/**
 * Every Elasticsearch mapping Cairn uses, versioned. Indices are created as `<prefix>-<name>-v<N>` and
 * read and written through the alias `<prefix>-<name>`, so a reindex can build v<N+1> and swap.
 * Bump a version when a mapping changes incompatibly.
 */
export const INDEX_VERSIONS = {
  memories: 1,
  entities: 1,
  sources: 1,
  jobs: 1,
  apikeys: 1,
  webhooks: 1,
  sequences: 1,
  tombstones: 1,
  spaces: 1,
  deletions: 1,
} as const;
export type IndexName = keyof typeof INDEX_VERSIONS;

export interface EmbeddingSpec {
  model: string;
  dims: number;
}

const keyword = { type: 'keyword' } as const;
const date = { type: 'date' } as const;
const int = { type: 'integer' } as const;

const scopeProperties: Record<string, estypes.MappingProperty> = {
  tenant: keyword,
  space_id: keyword,
  container_tags: keyword,
  org_id: keyword,
  user_id: keyword,
  customer_id: keyword,
  agent_id: keyword,
  session_id: keyword,
};

function vectorField(embedding: EmbeddingSpec): estypes.MappingProperty {
  return {
    type: 'dense_vector',
    dims: embedding.dims,
    index: true,
    similarity: 'cosine',
    index_options: { type: 'hnsw', m: 16, ef_construction: 100 },
  };
}

export function memoriesMapping(embedding: EmbeddingSpec): estypes.MappingTypeMapping {
  return {
    dynamic: 'strict',
    _meta: { schema_version: INDEX_VERSIONS.memories, embedding_model: embedding.model, embedding_dims: embedding.dims },
    properties: {
      id: keyword,
      tenant: keyword,
      text: { type: 'text', analyzer: 'standard' },
      /** Neighbouring conversation turns: matched with a lower weight, never returned as the memory. */
      context: { type: 'text', analyzer: 'standard' },
      /** `text` and `context` stemmed client-side (lib/search/analysis.ts): this ES may have no stemmer. */
      stems: { type: 'text', analyzer: 'standard' },
      context_stems: { type: 'text', analyzer: 'standard' },
      type: keyword,
      confidence: { type: 'float' },
      entities: {
        properties: { id: keyword, name: { type: 'text', fields: { raw: keyword } }, type: keyword },
      },
      scope: { properties: scopeProperties },
      provenance: {
        properties: {
          source_id: keyword,
          job_id: keyword,
          document_id: keyword,
          document_type: keyword,
          document_date: date,
          format: keyword,
          surface: keyword,
          source_url: keyword,
          file_name: keyword,
          chunk_index: int,
          char_start: int,
          char_end: int,
          turn_start: int,
          turn_end: int,
          turn_ids: keyword,
          speakers: keyword,
          session_date: date,
          page: int,
          timestamp: date,
          /** When this version of a replaceable source was accepted: a newer version's memories replace these. */
          version_at: date,
        },
      },
      categories: keyword,
      metadata: { type: 'flattened' },
      event_dates: date,
      created_at: date,
      updated_at: date,
      embedding: vectorField(embedding),
      embedding_model: keyword,
      /** Backfill runs that handled this memory: a retried batch skips it (exactly once per run). */
      backfill_runs: keyword,
    },
  };
}

export function entitiesMapping(embedding: EmbeddingSpec): estypes.MappingTypeMapping {
  return {
    dynamic: 'strict',
    _meta: { schema_version: INDEX_VERSIONS.entities, embedding_model: embedding.model, embedding_dims: embedding.dims },
    properties: {
      id: keyword,
      tenant: keyword,
      name: { type: 'text', fields: { raw: keyword } },
      normalized_name: keyword,
      type: keyword,
      aliases: { type: 'text', fields: { raw: keyword } },
      normalized_aliases: keyword,
      mention_count: int,
      merged_from: keyword,
      /** Merges into this entity begun and not yet finished (lib/entities/splits.ts): their losers' ids. */
      merging: keyword,
      source_ids: keyword,
      first_seen_at: date,
      last_seen_at: date,
      embedding: vectorField(embedding),
      embedding_model: keyword,
    },
  };
}

export const sourcesMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.sources },
  properties: {
    id: keyword,
    tenant: keyword,
    kind: keyword,
    format: keyword,
    document_type: keyword,
    document_id: keyword,
    document_date: date,
    source_url: keyword,
    file_name: keyword,
    title: { type: 'text' },
    /**
     * What a re-extraction asks again: the categories, mode and metadata the source was last sent
     * with. The metadata is kept as JSON text: a partial update would merge an object into the one
     * stored, keeping keys the last send dropped.
     */
    categories: keyword,
    mode: keyword,
    metadata_json: { type: 'keyword', index: false, doc_values: false },
    /** When the source's first job was accepted: relative dates in it count from then. */
    accepted_at: date,
    /** A replaceable source's (a document under the caller's id, a URL) newest completed version. */
    version_at: date,
    content_hash: keyword,
    blob_key: keyword,
    /** Hashes of the conversation turns already stored, for ingest-or-update surfaces. */
    turn_hashes: keyword,
    /** The job that ingested each of those turns, position for position. */
    turn_jobs: keyword,
    turn_count: int,
    /** A hash of the conversation's container tags and metadata as last sent. */
    attributes_hash: keyword,
    scope: { properties: scopeProperties },
    metadata: { type: 'flattened' },
    last_job_id: keyword,
    job_ids: keyword,
    created_at: date,
    updated_at: date,
  },
};

/** Compact summaries of finished jobs, so a job is answerable after Temporal's retention. */
export const jobsMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.jobs },
  properties: {
    job_id: keyword,
    tenant: keyword,
    status: keyword,
    stage: keyword,
    kind: keyword,
    format: keyword,
    document_type: keyword,
    document_id: keyword,
    surface: keyword,
    source_id: keyword,
    source_url: keyword,
    scope: { type: 'flattened' },
    categories: keyword,
    memories_created: int,
    counts: { type: 'flattened' },
    stages: { type: 'object', enabled: false },
    errors: { type: 'object', enabled: false },
    created_at: date,
    updated_at: date,
    finished_at: date,
    /** When the job's source was deleted: its scope, document id and URL went with it. */
    source_deleted_at: date,
  },
};

export const apiKeysMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.apikeys },
  properties: {
    id: keyword,
    tenant: keyword,
    key_hash: keyword,
    prefix: keyword,
    name: keyword,
    permissions: keyword,
    created_at: date,
    revoked_at: date,
  },
};

/** Webhook subscriptions (lib/webhooks.ts): read by id or by tenant, never searched by text. */
export const webhooksMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.webhooks },
  properties: {
    id: keyword,
    tenant: keyword,
    url: { type: 'keyword', index: false },
    events: keyword,
    description: { type: 'keyword', index: false },
    secret: { type: 'keyword', index: false },
    created_at: date,
  },
};

/**
 * Counters shared by every API process (lib/sequences.ts): the next number of a key, such as the next
 * turn position of a Tex session. Read and written by id only.
 */
export const sequencesMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.sequences },
  properties: {
    tenant: keyword,
    next: { type: 'long', index: false },
    updated_at: { type: 'date', index: false },
  },
};

/**
 * Memories deleted through the API, by id (lib/memories.ts): the same content ingested again (a
 * re-send, a retried job, a re-extraction) writes the same ids, and must not bring them back. Read by
 * id only; a source's go with it.
 */
export const tombstonesMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.tombstones },
  properties: {
    tenant: keyword,
    source_id: keyword,
    /** The user whose memory it was: a Tex turn forgotten by one user is not another's to learn of. */
    user_id: { type: 'keyword', index: false },
    deleted_at: { type: 'date', index: false },
  },
};

/**
 * Named spaces (lib/spaces.ts, the Crosmos SDK's `spaces`): one document a name within a tenant (the
 * document id is derived from both, so a name is taken once), read by the space's UUID or by name.
 */
export const spacesMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.spaces },
  properties: {
    id: keyword,
    tenant: keyword,
    name: keyword,
    description: { type: 'keyword', index: false },
    meta: { type: 'object', enabled: false },
    created_at: date,
    updated_at: date,
  },
};

/**
 * The receipts of Tex's deletions (api/compat/tex-deletions.ts), kept so `deletions.get(request_id)`
 * reads one back: read by id within a tenant, never searched, the receipt kept as answered. They go
 * when the tenant is erased.
 */
export const deletionsMapping: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  _meta: { schema_version: INDEX_VERSIONS.deletions },
  properties: {
    tenant: keyword,
    created_at: date,
    receipt: { type: 'object', enabled: false },
  },
};
