import { Router } from 'express';
import { z } from 'zod';
import { MemoryUpdate } from '../lib/memories';
import { HealthAnswer, Liveness } from './health';
import { BatchError } from './batch';
import { CreatedKey, CreateKeyRequest, EraseTenantQuery, ErasedTenant, KeyList, TenantQuery } from './admin';
import { ApiKeyView } from '../lib/apikeys';
import { CrosmosConversationRequest, CrosmosConversationResponse, CrosmosIngestAccepted, CrosmosJob, CrosmosSearch, CrosmosSearchRequest, CrosmosSourceIngestRequest } from './compat/crosmos';
import { CrosmosSpace, CrosmosSpaceCreateRequest, CrosmosSpaceList, CrosmosSpaceListQuery } from './compat/crosmos-spaces';
import {
  CrosmosEntityDetail,
  CrosmosEntityList,
  CrosmosEntityListQuery,
  CrosmosMemory,
  CrosmosMemoryList,
  CrosmosMemoryListQuery,
  CrosmosSource,
  CrosmosSourceList,
  CrosmosSourceListQuery,
  CrosmosSpaceQuery,
} from './compat/crosmos-stores';
import { MemsolusIngestFields, MemsolusJob, MemsolusJobList, MemsolusListQuery } from './compat/memsolus';
import { TexRecallRequest, TexRecallResponse } from './compat/tex-recall';
import { TexAddResponse, TexMemoryWriteRequest, TexMemoryWriteResponse, TexUpdateMemoryResponse } from './compat/tex-documents';
import { SupermemoryConversationRequest, SupermemoryConversationResponse } from './compat/supermemory';
import { SupermemoryAddRequest, SupermemoryAddResponse, SupermemoryDocument, SupermemoryDocumentUpdateRequest, SupermemoryUploadFields } from './compat/supermemory-documents';
import { SupermemoryBatchAddRequest, SupermemoryBatchAddResponse, SupermemoryDeleteBulkRequest, SupermemoryDeleteBulkResponse } from './compat/supermemory-document-batches';
import { SupermemoryDocumentListRequest, SupermemoryDocumentListResponse, SupermemoryProcessingResponse } from './compat/supermemory-document-listings';
import { SupermemoryForgetRequest, SupermemoryForgetResponse, SupermemoryUpdateMemoryRequest, SupermemoryUpdateMemoryResponse, TexForgetRequest, TexUpdateMemoryRequest } from './compat/supermemory-memories';
import { SupermemoryDocumentSearchRequest, SupermemoryDocumentSearchResponse, SupermemoryProfileRequest, SupermemoryProfileResponse, SupermemorySearchRequest, SupermemorySearchResponse } from './compat/supermemory-recall';
import { SynapBatchCreate, SynapBatchResponse, SynapCreateMemory, SynapIngestionStatus, SynapMemory, SynapMemoryUpdate, SynapQueued } from './compat/synap';
import { SynapSdkBatchResponse, SynapSdkDeleted, SynapSdkMemory, SynapSdkQueued, SynapSdkStatus, SynapSdkUploadFields, SynapWhoami } from './compat/synap-sdk';
import { TexIngestRequest, TexIngestResponse } from './compat/tex-remember';
import { TexTokenExchange, TexTokens, TexVerified } from './compat/tex-auth';
import { TexForgetQuery, TexForgetTurnResponse } from './compat/tex-turns';
import { TexEpisodeList, TexEpisodeListQuery, TexEpisodeRequest, TexEpisodeResponse } from './compat/tex-episodes';
import { TexPreferenceRequest, TexPreferenceResponse } from './compat/tex-preferences';
import { TexDeletionReceipt, TexDeletionRequest } from './compat/tex-deletions';
import { SynapForgetRequest, SynapForgetResponse } from './compat/synap-forget';
import { CancellingJob, JobListQuery, JobListResponse, RetriedJob } from './jobs';
import { JobProgress } from '../lib/domain/job';
import { Memory } from '../lib/domain/memory';
import { NoteBody, ScheduleList, TriggeredSchedule } from './schedules';
import { ScheduleView } from '../lib/backfill/schedules';
import { BackfillView, CancellingBackfill, StartedBackfill } from './backfills';
import { BackfillRequest, ScheduleRequest } from '../lib/backfill/request';
import { NativeSearchRequest } from './search';
import { SourceListQuery, SourceListResponse, SourcesDeleteRequest } from './sources';
import { SourceDeletionResponse, SourceResponse, SourcesDeletionResponse } from '../lib/domain/source';
import { CreateWebhookRequest, CreatedWebhook, WebhookView } from '../lib/webhooks';
import { WebhookList } from './webhooks';
import { EntityListQuery, EntityListResponse } from './entities';
import { Entity } from '../lib/entities/entity';
import { MemoryListRequest, ScopeListRequest, ScopeListResponse } from './memories';
import {
  AcceptedFile,
  AcceptedConversation,
  AcceptedJob,
  NativeBatchRequest,
  NativeBatchResponse,
  NativeConversationRequest,
  NativeDocumentRequest,
  NativeFileFields,
  NativeUrlRequest,
} from './native';

interface Operation {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  tag: string;
  summary: string;
  permission?: string;
  body?: z.ZodType;
  multipart?: z.ZodType;
  query?: z.ZodType;
  status?: number;
  response?: z.ZodType;
  /** Other success statuses answered in the same shape, with what each means. */
  alsoSuccess?: Record<number, string>;
  /** Error statuses beyond those every operation can answer (401, 403, validation, 404 on ids). */
  errors?: number[];
  /** Served without a key (health probes). */
  public?: boolean;
  /** The body of its errors, where it is not its surface's usual one (batches name their items' errors). */
  errorBody?: z.ZodType;
}

/** Statuses an ingest can answer besides validation and a service down: over the format limit, wrong type. */
const INGEST_ERRORS = [413, 415];

const ID = '{id}';
/** A memory as GET answers it: the stored document without its vector, stems and neighbours' context. */
const MemoryResponse = Memory;
const MemoryListResponse = z.object({ memories: z.array(Memory), next_page_token: z.string().nullable() });
const SearchResponse = z.object({
  results: z.array(Memory.omit({ tenant: true }).extend({ score: z.number(), ranks: z.record(z.string(), z.number()) })),
  mode: z.string(),
  methods: z.array(z.string()),
  warnings: z.array(z.string()).optional(),
  took_ms: z.number(),
});
const FastApiValidation = z.object({ detail: z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })) });
const FastApiError = z.object({ detail: z.string() });
const NativeError = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });

/**
 * A batch's errors: the usual error (a body that is no batch at all), which names each invalid item
 * beside it when the whole batch is refused (fail_fast); a batch that accepted nothing answers its
 * usual shape, every item in `errors`, with the status they share.
 */
const batchErrors = (accepted: z.ZodType) =>
  z.union([
    NativeError.extend({ results: z.array(accepted).max(0).optional(), errors: z.array(BatchError).optional() }),
    z.object({ results: z.array(accepted).max(0), errors: z.array(BatchError) }),
  ]);

/** supermemory's routes Tex's SDK calls too, with Tex's errors: what each reads and writes is the caller's container's (user's). */
const texSupermemoryCalls = (operations: Operation[]): Operation[] =>
  operations
    .filter((operation) => /^\/compat\/supermemory\/v[34]\/(documents|search|profile|memories)/.test(operation.path) && !(operation.path.endsWith('/v4/memories') && operation.method === 'patch'))
    .map((operation) => ({ ...operation, ...(operation.body === SupermemoryForgetRequest ? { body: TexForgetRequest } : {}), ...(operation.response === SupermemoryAddResponse ? { response: TexAddResponse } : {}), path: operation.path.replace('/compat/supermemory', '/compat/tex'), tag: 'tex', summary: `Tex's SDK, as ${operation.path} within the caller's container (its user): ${operation.summary}` }));

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/healthz', tag: 'health', summary: '200 when Temporal and Elasticsearch answer, else 503', public: true, errors: [503], response: HealthAnswer },
  { method: 'get', path: '/readyz', tag: 'health', summary: '200 when ready to take requests; 503 while starting or shutting down', public: true, errors: [503], response: HealthAnswer },
  { method: 'get', path: '/livez', tag: 'health', summary: '200 while the process runs', public: true, response: Liveness },
  { method: 'get', path: '/metrics', tag: 'health', summary: 'Prometheus metrics of the API', public: true },
  { method: 'post', path: '/v1/documents', tag: 'native', summary: 'Ingest a text document', permission: 'ingest', body: NativeDocumentRequest, status: 202, response: AcceptedJob, errors: INGEST_ERRORS },
  { method: 'post', path: '/v1/conversations', tag: 'native', summary: 'Ingest a conversation; with its conversation_id, ingest or update it (200 when no job is needed)', permission: 'ingest', body: NativeConversationRequest, status: 202, response: AcceptedConversation, alsoSuccess: { 200: 'A conversation sent again under its conversation_id: no job needed (updated or unchanged)' }, errors: INGEST_ERRORS },
  { method: 'post', path: '/v1/urls', tag: 'native', summary: 'Ingest a URL (fetched by the pipeline, SSRF-guarded)', permission: 'ingest', body: NativeUrlRequest, status: 202, response: AcceptedJob, errors: INGEST_ERRORS },
  { method: 'post', path: '/v1/files', tag: 'native', summary: 'Upload a file (TXT, MARKDOWN, HTML, JSON, CSV, PDF, DOCX); 413 over the format limit, 415 for other types', permission: 'ingest', multipart: NativeFileFields, status: 202, response: AcceptedFile, errors: INGEST_ERRORS },
  { method: 'post', path: '/v1/batch', tag: 'native', summary: 'Ingest up to 100 items ({type: document|conversation|url, …}) → {results, errors}; fail_fast rejects all on one invalid item (400); a batch that accepts nothing answers the status its items share (400 invalid, 409 duplicates, 503 a service down)', permission: 'ingest', body: NativeBatchRequest, status: 202, errors: [409], response: NativeBatchResponse, errorBody: batchErrors(AcceptedConversation) },
  { method: 'get', path: '/v1/jobs', tag: 'jobs', summary: 'List jobs (Temporal visibility, filter by status/format/kind/document_type)', permission: 'read', query: JobListQuery, response: JobListResponse },
  { method: 'get', path: `/v1/jobs/${ID}`, tag: 'jobs', summary: 'Job progress: status, stage, per-stage state, counts, errors', permission: 'read', response: JobProgress },
  { method: 'post', path: `/v1/jobs/${ID}/cancel`, tag: 'jobs', summary: 'Cancel a running job (409 when it is not running)', permission: 'ingest', status: 202, errors: [409], response: CancellingJob },
  { method: 'post', path: `/v1/jobs/${ID}/retry`, tag: 'jobs', summary: 'Retry a failed, cancelled or partly completed job as a new job (409 when that job was already retried)', permission: 'ingest', status: 202, errors: [409], response: RetriedJob },
  { method: 'post', path: '/v1/search', tag: 'search', summary: 'Search memories: hybrid (BM25 + kNN, RRF), bm25 or knn, with scope filters', permission: 'search', body: NativeSearchRequest, response: SearchResponse },
  { method: 'post', path: '/v1/memories/list', tag: 'memories', summary: "List memories matching search's filters (scope, types, sources, entities, dates, metadata), newest first; next_page_token continues", permission: 'read', body: MemoryListRequest, response: MemoryListResponse },
  { method: 'post', path: '/v1/scopes/list', tag: 'memories', summary: "List the values a scope field takes (the tenant's users, agents, sessions, …) on the memories search's filters match, each with its memory and source counts and first and last memory times, in value order; next_page_token continues", permission: 'read', body: ScopeListRequest, response: ScopeListResponse },
  { method: 'get', path: `/v1/memories/${ID}`, tag: 'memories', summary: 'Get a memory', permission: 'read', response: MemoryResponse },
  { method: 'patch', path: `/v1/memories/${ID}`, tag: 'memories', summary: 'Update a memory (replace | append | smart-merge); re-embedded when the text changes', permission: 'write', body: MemoryUpdate, response: MemoryResponse },
  { method: 'delete', path: `/v1/memories/${ID}`, tag: 'memories', summary: 'Delete a memory', permission: 'write', status: 204 },
  { method: 'get', path: '/v1/sources', tag: 'memories', summary: 'List sources, newest first, each with its memory count (filter by kind, format, document_type, document_id)', permission: 'read', query: SourceListQuery, response: SourceListResponse },
  { method: 'get', path: `/v1/sources/${ID}`, tag: 'memories', summary: "Get a source (a memory's provenance.source_id): what was sent, its newest version, how many memories it has", permission: 'read', response: SourceResponse },
  { method: 'delete', path: `/v1/sources/${ID}`, tag: 'memories', summary: 'Delete a source with its memories, its mentions in entities (an entity no other source names goes) and its stored content; 409 while a job of it is queued or running', permission: 'write', response: SourceDeletionResponse, errors: [409] },
  { method: 'post', path: '/v1/sources/delete', tag: 'memories', summary: 'Delete every source the filters match (a user, agent or session: by scope, or by ids), as DELETE /v1/sources/{id} does, up to 500 a call (remaining says how many still match); a source with a job still open is left and named in refused', permission: 'write', body: SourcesDeleteRequest, response: SourcesDeletionResponse, errors: [409] },
  { method: 'get', path: '/v1/entities', tag: 'memories', summary: 'List entities, most mentioned first (q: by name or alias; type)', permission: 'read', query: EntityListQuery, response: EntityListResponse },
  { method: 'get', path: `/v1/entities/${ID}`, tag: 'memories', summary: 'Get an entity', permission: 'read', response: Entity },
  { method: 'post', path: '/v1/admin/keys', tag: 'admin', summary: 'Create an API key (the key is returned once)', permission: 'admin', body: CreateKeyRequest, status: 201, response: CreatedKey },
  { method: 'get', path: '/v1/admin/keys', tag: 'admin', summary: "List the tenant's API keys (the operator key may name another tenant)", permission: 'admin', query: TenantQuery, response: KeyList },
  { method: 'delete', path: `/v1/admin/keys/${ID}`, tag: 'admin', summary: 'Revoke an API key (the operator key may name another tenant)', permission: 'admin', query: TenantQuery, response: ApiKeyView },
  { method: 'delete', path: '/v1/admin/tenants/{tenant}', tag: 'admin', summary: "Erase a tenant's data whole, confirmed by naming it again as ?confirm= (a 400 without): every source with its memories and stored uploads, entities, deleted-memory tombstones, named spaces, webhooks, job summaries, minted keys (revoked, then deleted) and backfill schedules; the caller's own tenant, or the operator key any; 409 while a job of the tenant is queued or running", permission: 'admin', query: EraseTenantQuery, response: ErasedTenant, errors: [409] },
  { method: 'post', path: '/v1/webhooks', tag: 'webhooks', summary: "Subscribe a URL to job events (job.completed, job.failed, job.cancelled), delivered per Standard Webhooks; the signing secret is returned once", permission: 'admin', body: CreateWebhookRequest, status: 201, response: CreatedWebhook },
  { method: 'get', path: '/v1/webhooks', tag: 'webhooks', summary: "List the tenant's webhooks", permission: 'admin', response: WebhookList },
  { method: 'get', path: `/v1/webhooks/${ID}`, tag: 'webhooks', summary: 'Get a webhook', permission: 'admin', response: WebhookView },
  { method: 'delete', path: `/v1/webhooks/${ID}`, tag: 'webhooks', summary: 'Delete a webhook (deliveries not yet sent are skipped)', permission: 'admin', status: 204 },
  { method: 'post', path: '/v1/backfills', tag: 'backfills', summary: 'Start a backfill now: reembed | reextract | reindex (operator key only, one at a time: 409 while one runs) | import (urls or folder)', permission: 'write', body: BackfillRequest, status: 202, errors: [409], response: StartedBackfill },
  { method: 'get', path: `/v1/backfills/${ID}`, tag: 'backfills', summary: 'Backfill progress (a completed one from its result, others from the workflow query): status running | completed | failed | cancelled, total, scanned, processed, skipped, failed, runs', permission: 'read', response: BackfillView },
  { method: 'post', path: `/v1/backfills/${ID}/cancel`, tag: 'backfills', summary: 'Stop a running backfill between items (its ingest jobs finish by themselves); 409 when it is not running', permission: 'write', status: 202, errors: [409], response: CancellingBackfill },
  { method: 'post', path: '/v1/schedules', tag: 'backfills', summary: 'Put a backfill on a Temporal Schedule (every: "24h" or cron)', permission: 'write', body: ScheduleRequest, status: 201, response: ScheduleView },
  { method: 'get', path: '/v1/schedules', tag: 'backfills', summary: "List the tenant's backfill schedules", permission: 'read', response: ScheduleList },
  { method: 'get', path: `/v1/schedules/${ID}`, tag: 'backfills', summary: 'A schedule with its next and recent runs', permission: 'read', response: ScheduleView },
  { method: 'post', path: `/v1/schedules/${ID}/pause`, tag: 'backfills', summary: 'Pause a schedule', permission: 'write', body: NoteBody, response: ScheduleView },
  { method: 'post', path: `/v1/schedules/${ID}/unpause`, tag: 'backfills', summary: 'Unpause a schedule', permission: 'write', body: NoteBody, response: ScheduleView },
  { method: 'post', path: `/v1/schedules/${ID}/trigger`, tag: 'backfills', summary: 'Run a scheduled backfill now; 409 while a run of it is still going (which the trigger would skip), or, for a reindex, while any reindex runs', permission: 'write', status: 202, errors: [409], response: TriggeredSchedule },
  { method: 'delete', path: `/v1/schedules/${ID}`, tag: 'backfills', summary: 'Delete a schedule', permission: 'write', status: 204 },
  { method: 'post', path: '/compat/crosmos/api/v1/conversations', tag: 'crosmos', summary: 'Crosmos: ingest a conversation', permission: 'ingest', body: CrosmosConversationRequest, status: 202, response: CrosmosConversationResponse },
  { method: 'get', path: `/compat/crosmos/api/v1/jobs/${ID}`, tag: 'crosmos', summary: "Crosmos: a job's status, as the Crosmos SDK's jobs.get_status() reads it (pending | processing | completed | partial | failed | cancelled, result counts once it ended)", permission: 'read', response: CrosmosJob },
  { method: 'post', path: '/compat/crosmos/api/v1/sources', tag: 'crosmos', summary: "Crosmos (SDK `sources.ingest`): up to 100 sources (text, markdown, html or json) into a space, a document job each, checked whole before any starts → {job_id (the first's), jobs, source_ids, status: pending}; role and visibility not used", permission: 'ingest', body: CrosmosSourceIngestRequest, status: 202, response: CrosmosIngestAccepted, errors: [413] },
  { method: 'post', path: '/compat/crosmos/api/v1/spaces', tag: 'crosmos', summary: 'Crosmos (SDK `spaces.create`): name a space (a new UUID); names are unique within the tenant (409); naming one is optional, every route takes any space id', permission: 'write', body: CrosmosSpaceCreateRequest, status: 201, response: CrosmosSpace, errors: [409] },
  { method: 'get', path: '/compat/crosmos/api/v1/spaces', tag: 'crosmos', summary: "Crosmos (SDK `spaces.list`): the tenant's named spaces, oldest first, by offset, or the one of a name → {spaces, total}", permission: 'read', query: CrosmosSpaceListQuery, response: CrosmosSpaceList },
  { method: 'get', path: `/compat/crosmos/api/v1/spaces/${ID}`, tag: 'crosmos', summary: 'Crosmos (SDK `spaces.get`): a named space', permission: 'read', response: CrosmosSpace },
  { method: 'delete', path: `/compat/crosmos/api/v1/spaces/${ID}`, tag: 'crosmos', summary: "Crosmos (SDK `spaces.delete`): a space with every source filed under it (their memories and mentions in entities), then its name; a space never named but holding data is emptied; 409 while a job of one of its sources runs", permission: 'write', status: 204, errors: [409] },
  { method: 'get', path: '/compat/crosmos/api/v1/sources', tag: 'crosmos', summary: "Crosmos (SDK `sources.list`): a space's sources, newest first, by offset → {sources, count, total}; extraction_status is the last job's; content and token_count are not kept (null)", permission: 'read', query: CrosmosSourceListQuery, response: CrosmosSourceList },
  { method: 'get', path: `/compat/crosmos/api/v1/sources/${ID}`, tag: 'crosmos', summary: 'Crosmos (SDK `sources.get`): a source of the space (its UUID)', permission: 'read', query: CrosmosSpaceQuery, response: CrosmosSource },
  { method: 'delete', path: `/compat/crosmos/api/v1/sources/${ID}`, tag: 'crosmos', summary: 'Crosmos (SDK `sources.delete`): a source of the space with everything derived from it, as DELETE /v1/sources/{id}; 409 while a job of it runs', permission: 'write', query: CrosmosSpaceQuery, status: 204, errors: [409] },
  { method: 'get', path: '/compat/crosmos/api/v1/memories', tag: 'crosmos', summary: "Crosmos (SDK `memories.list`): a space's memories by when they were stored (order asc | desc), by offset → {memories, count}; memory_type is Cairn's type", permission: 'read', query: CrosmosMemoryListQuery, response: CrosmosMemoryList },
  { method: 'get', path: `/compat/crosmos/api/v1/memories/${ID}`, tag: 'crosmos', summary: 'Crosmos (SDK `memories.get`): a memory of the space (mem_<hex>, as search answers it)', permission: 'read', query: CrosmosSpaceQuery, response: CrosmosMemory },
  { method: 'delete', path: `/compat/crosmos/api/v1/memories/${ID}`, tag: 'crosmos', summary: 'Crosmos (SDK `memories.delete`): a memory of the space, as DELETE /v1/memories/{id}', permission: 'write', query: CrosmosSpaceQuery, status: 204 },
  { method: 'get', path: '/compat/crosmos/api/v1/entities', tag: 'crosmos', summary: "Crosmos (SDK `entities.list`): the entities the space's memories name (most mentioned first, or sort_by name | created_at), by offset → {entities, total}; edge_count is 0 (Cairn keeps no graph edges)", permission: 'read', query: CrosmosEntityListQuery, response: CrosmosEntityList },
  { method: 'get', path: `/compat/crosmos/api/v1/entities/${ID}`, tag: 'crosmos', summary: "Crosmos (SDK `entities.get`): an entity the space's memories name, with up to 100 of those memories, newest first", permission: 'read', query: CrosmosSpaceQuery, response: CrosmosEntityDetail },
  { method: 'post', path: '/compat/crosmos/api/v1/search', tag: 'crosmos', summary: "Crosmos (SDK `search.hybrid`): hybrid search within a space → {query, candidates: [{memory_id, content, memory_type, score (cosine 0..1), created_at, event_time, owner_name, source}]}", permission: 'search', body: CrosmosSearchRequest, response: CrosmosSearch },
  { method: 'post', path: '/compat/supermemory/v4/conversations', tag: 'supermemory', summary: 'supermemory: ingest or update a conversation', permission: 'ingest', body: SupermemoryConversationRequest, status: 200, response: SupermemoryConversationResponse },
  { method: 'post', path: '/compat/supermemory/v3/documents', tag: 'supermemory', summary: 'supermemory (SDK `add`): ingest text, or a URL to fetch; the id is its job\'s; a customId added again is a new version of the same document', permission: 'ingest', body: SupermemoryAddRequest, status: 200, errors: INGEST_ERRORS, response: SupermemoryAddResponse },
  { method: 'post', path: '/compat/supermemory/v3/documents/file', tag: 'supermemory', summary: 'supermemory (SDK `documents.uploadFile`): a file (multipart `file`; fileType text or pdf) → {id, status: "queued"}', permission: 'ingest', multipart: SupermemoryUploadFields, errors: INGEST_ERRORS, response: SupermemoryAddResponse },
  { method: 'post', path: '/compat/supermemory/v3/documents/batch', tag: 'supermemory', summary: 'supermemory (SDK `documents.batchAdd`): up to 100 documents (each an add\'s body, or its content), each added as `POST /v3/documents` adds one, with the batch\'s containerTag(s), filepath and metadata unless it has its own → {results: [{id, status: queued | error, error?, details?}], success, failed}; a batch that adds nothing answers the status its documents share (400, 409, 413, 503)', permission: 'ingest', body: SupermemoryBatchAddRequest, errors: [...INGEST_ERRORS, 409], response: SupermemoryBatchAddResponse },
  { method: 'delete', path: '/compat/supermemory/v3/documents/bulk', tag: 'supermemory', summary: 'supermemory (SDK `documents.deleteBulk`): the documents named by ids (≤ 100), or every document of the containerTags and/or filepath (exact, or a prefix ending in "/"), each with its memories as `DELETE /v3/documents/{id}` → {deletedCount, success, containerTags?, errors?}: a document not found or still being processed is named in errors', permission: 'write', body: SupermemoryDeleteBulkRequest, response: SupermemoryDeleteBulkResponse },
  { method: 'get', path: '/compat/supermemory/v3/documents/processing', tag: 'supermemory', summary: 'supermemory (SDK `documents.listProcessing`): the documents still queued or being processed (every ingest job of the tenant not yet ended), newest first, the first 100 detailed → {documents, totalCount}', permission: 'read', response: SupermemoryProcessingResponse },
  { method: 'post', path: '/compat/supermemory/v3/documents/list', tag: 'supermemory', summary: 'supermemory (SDK `documents.list`): the documents Cairn holds (its sources), each under the id of the job that wrote its current version, with that job\'s status; containerTags, filepath (exact, or a prefix ending in "/"), filters (metadata equality, as search), sort and order, page and limit (≤ 100) → {memories, pagination}', permission: 'read', body: SupermemoryDocumentListRequest, response: SupermemoryDocumentListResponse },
  { method: 'get', path: `/compat/supermemory/v3/documents/${ID}`, tag: 'supermemory', summary: 'supermemory (SDK `documents.get`): a document and its processing status (queued | extracting | chunking | embedding | indexing | done | failed)', permission: 'read', response: SupermemoryDocument },
  { method: 'patch', path: `/compat/supermemory/v3/documents/${ID}`, tag: 'supermemory', summary: 'supermemory (SDK `documents.update`): a new version of the document (new content, or its stored content read again) with the containerTags, metadata and filepath sent; the earlier version\'s memories go once it is done; answered with the new version\'s id; 409 while the document has not been stored yet', permission: 'ingest', body: SupermemoryDocumentUpdateRequest, errors: [...INGEST_ERRORS, 409], response: SupermemoryAddResponse },
  { method: 'delete', path: `/compat/supermemory/v3/documents/${ID}`, tag: 'supermemory', summary: 'supermemory (SDK `documents.delete`): the document with its memories; 409 while its job runs', permission: 'write', status: 204, errors: [409] },
  { method: 'post', path: '/compat/supermemory/v4/search', tag: 'supermemory', summary: 'supermemory (SDK `search.memories`): hybrid search within a containerTag; similarity is cosine 0..1, threshold keeps results at least that similar; filters: metadata equality (AND, or OR over one key)', permission: 'search', body: SupermemorySearchRequest, response: SupermemorySearchResponse },
  { method: 'post', path: '/compat/supermemory/v3/search', tag: 'supermemory', summary: 'supermemory (SDK `search.documents`, `search.execute`): hybrid search, the best memories grouped by the document they came from (documentId: the id `POST /v3/documents` answered), each with its chunks and their cosine similarity; chunkThreshold leaves out chunks less similar; docId searches one document', permission: 'search', body: SupermemoryDocumentSearchRequest, response: SupermemoryDocumentSearchResponse },
  { method: 'delete', path: '/compat/supermemory/v4/memories', tag: 'supermemory', summary: 'supermemory (SDK `memories.forget`): deletes the memory of the containerTag named by its id, or every one whose text is exactly `content` (forgottenIds); 404 when none', permission: 'write', body: SupermemoryForgetRequest, errors: [404], response: SupermemoryForgetResponse },
  { method: 'patch', path: '/compat/supermemory/v4/memories', tag: 'supermemory', summary: 'supermemory (SDK `memories.updateMemory`): replaces the text of the memory of the containerTag named by its id or exact content, in place (same id; no version chain); metadata sent takes the place of its own; forgetAfter refused; 404 when none, 409 when several memories have that content', permission: 'write', body: SupermemoryUpdateMemoryRequest, errors: [404, 409], response: SupermemoryUpdateMemoryResponse },
  { method: 'post', path: '/compat/supermemory/v4/profile', tag: 'supermemory', summary: 'supermemory (SDK `profile`, @supermemory/tools middleware): a containerTag\'s lasting memories (facts, preferences: static) and recent ones (dynamic), newest first, and search results for q', permission: 'search', body: SupermemoryProfileRequest, response: SupermemoryProfileResponse },
  { method: 'post', path: '/compat/tex/auth/token-exchange', tag: 'tex', summary: "Tex's SDK sign-in: an API key (and optionally a user_id, session_id) → an access token carrying those claims, sent as `Bearer` like the key (no Authorization header on this call)", public: true, body: TexTokenExchange, errors: [401], response: TexTokens },
  { method: 'get', path: '/compat/tex/auth/verify', tag: 'tex', summary: 'Who an access token (or a key) acts as: {valid, tenant: {org_id, user_id, session_id}}', response: TexVerified },
  { method: 'post', path: '/compat/tex/ingestion/memory', tag: 'tex', summary: 'Tex: write turns (active fragments searchable on return, passive enrichment after)', permission: 'ingest', body: TexIngestRequest, status: 202, response: TexIngestResponse },
  { method: 'post', path: '/compat/tex/ingestion/episode', tag: 'tex', summary: "Tex's SDK `episodes.store`: each message ({role, content|text, timestamp?}) written as `conversations.remember` writes a turn, into the episode's session (episode_id, else the scope's session, else a new id) → the write's answer with {episode_id, status, message}", permission: 'ingest', body: TexEpisodeRequest, status: 202, response: TexEpisodeResponse },
  { method: 'get', path: '/compat/tex/memories/episodes', tag: 'tex', summary: "Tex's SDK `episodes.list`: the sessions Tex wrote (with an access token, its user's), most recently written first → {episodes: [{episode_id, org_id, user_id, session_id, turn_count, created_at, updated_at, first_turn_at, last_turn_at}], total, limit, offset}", permission: 'read', query: TexEpisodeListQuery, response: TexEpisodeList },
  { method: 'post', path: '/compat/tex/ingestion/preference', tag: 'tex', summary: "Tex's SDK `preferences.store`: each preference stored as a `preference` memory of the user (its entity resolved, its level a confidence, its timestamp its date), searchable on return; a job jobs.get() tracks", permission: 'ingest', body: TexPreferenceRequest, response: TexPreferenceResponse },
  { method: 'get', path: `/compat/tex/ingestion/status/${ID}`, tag: 'tex', summary: "Tex's SDK jobs.get(): a write's job (its job_id or passive_job_id), as GET /v1/jobs/{id} answers it; only jobs started through Tex (with an access token, its user's)", permission: 'read', response: JobProgress },
  { method: 'delete', path: `/compat/tex/ingestion/memory/turns/${ID}`, tag: 'tex', summary: "Tex's SDK conversations.forget(): one turn (an id from a write's turn_ids) forgotten in both tiers — its fragment and every memory naming it — and kept from being stored again; 409 while the job enriching it runs", permission: 'write', query: TexForgetQuery, errors: [409], response: TexForgetTurnResponse },
  { method: 'post', path: '/compat/tex/me/deletions', tag: 'tex', summary: "Tex's SDK `deletions.delete_user|delete_user_scope|delete_memory|create`: a user's data (every source of the user in the tenant, with its memories, entity mentions and uploads, as POST /v1/sources/delete deletes them) or one memory with its copies, deleted for good (Cairn has no soft tier: mode soft is a hard delete, said in the receipt) → the receipt, also read back by `deletions.get`; an access token deletes its own user's data only (403 otherwise); a hierarchical scope is a 422; 404 for a user with nothing stored or a memory not theirs; 409 while a job of the user (or the memory's) runs, or for an idempotency_key sent with another target", permission: 'write', body: TexDeletionRequest, errors: [404, 409], response: TexDeletionReceipt },
  { method: 'get', path: `/compat/tex/me/deletions/${ID}`, tag: 'tex', summary: "Tex's SDK `deletions.get`: a deletion's receipt (with an access token, only those of its user's data)", permission: 'read', response: TexDeletionReceipt },
  { method: 'post', path: '/compat/tex/recall', tag: 'tex', summary: "Tex's SDK recall(): hybrid search over the scope's org and user (every session) → {hits: {turns, observations, entities}, confidence, mode, usage}; score is cosine 0..1, min_score drops hits below it", permission: 'search', body: TexRecallRequest, response: TexRecallResponse },
  { method: 'post', path: '/compat/tex/v4/memories', tag: 'tex', summary: "Tex's SDK `memories.add`: up to 100 memories of the caller's container (user), each stored through the ingest pipeline as a document of its own → {documentId: null, memories: [{id (the document's), memory, isStatic, createdAt, metadata, storedAs: \"document\", documentId, jobId}], message, usage}", permission: 'ingest', body: TexMemoryWriteRequest, response: TexMemoryWriteResponse },
  { method: 'patch', path: '/compat/tex/v4/memories', tag: 'tex', summary: "Tex's SDK `memories.update_memory`: a memory of the caller's container edited in place (by its mem_ id or exact content; superseded: true), or, by the id `memories.add` answered, its document's new version (superseded once its job is done)", permission: 'write', body: TexUpdateMemoryRequest, errors: [404, 409], response: TexUpdateMemoryResponse },
  { method: 'post', path: '/compat/memsolus/v1/memories/ingest', tag: 'memsolus', summary: 'Memsolus: create an ingest job (file or source_url)', permission: 'ingest', multipart: MemsolusIngestFields, status: 202, response: MemsolusJob, errors: INGEST_ERRORS },
  { method: 'get', path: '/compat/memsolus/v1/ingest-jobs', tag: 'memsolus', summary: 'Memsolus: list ingest jobs', permission: 'read', query: MemsolusListQuery, response: MemsolusJobList },
  { method: 'get', path: `/compat/memsolus/v1/ingest-jobs/${ID}`, tag: 'memsolus', summary: 'Memsolus: get an ingest job', permission: 'read', response: MemsolusJob },
  { method: 'post', path: '/compat/synap/v1/memories', tag: 'synap', summary: 'Synap: create memory (409 on a duplicate document_id)', permission: 'ingest', body: SynapCreateMemory, status: 201, errors: [409, 415], response: SynapQueued },
  { method: 'post', path: '/compat/synap/v1/memories/batch', tag: 'synap', summary: 'Synap: batch create memories → {results, errors}; fail_fast rejects all on one invalid document (400); a batch that accepts nothing answers the status its documents share (400 invalid, 409 duplicates, 503 a service down)', permission: 'ingest', body: SynapBatchCreate, status: 201, errors: [409, 415], response: SynapBatchResponse, errorBody: batchErrors(SynapQueued) },
  { method: 'get', path: `/compat/synap/v1/ingestions/${ID}`, tag: 'synap', summary: 'Synap: ingestion status', permission: 'read', response: SynapIngestionStatus },
  { method: 'get', path: `/compat/synap/v1/memories/${ID}`, tag: 'synap', summary: 'Synap: get memory', permission: 'read', response: SynapMemory },
  { method: 'patch', path: `/compat/synap/v1/memories/${ID}`, tag: 'synap', summary: 'Synap: update memory (merge_strategy)', permission: 'write', body: SynapMemoryUpdate, response: SynapMemory },
  { method: 'put', path: `/compat/synap/v1/memories/${ID}`, tag: 'synap', summary: 'Synap: update memory (merge_strategy), as PATCH', permission: 'write', body: SynapMemoryUpdate, response: SynapMemory },
  { method: 'delete', path: `/compat/synap/v1/memories/${ID}`, tag: 'synap', summary: 'Synap: delete memory', permission: 'write', status: 204 },
  { method: 'get', path: '/compat/synap/api/v1/auth/whoami', tag: 'synap-sdk', summary: "Synap's Python SDK: who the key is (client_id: the tenant)", response: SynapWhoami },
  { method: 'post', path: '/compat/synap/api/v1/memories/create', tag: 'synap-sdk', summary: "Synap's Python SDK: create memory (`document` or `content`; 409 on a duplicate document_id)", permission: 'ingest', body: SynapCreateMemory, errors: [409, 415], response: SynapSdkQueued },
  { method: 'post', path: '/compat/synap/api/v1/memories/batch', tag: 'synap-sdk', summary: "Synap's Python SDK: batch create → {batch_id, total, succeeded, failed, results, errors}; fail_fast rejects all on one invalid document (400); a batch that accepts nothing answers the status its documents share", permission: 'ingest', body: SynapBatchCreate, errors: [400, 409, 415], response: SynapSdkBatchResponse, errorBody: z.union([FastApiError, SynapSdkBatchResponse.partial().extend({ detail: z.string() })]) },
  { method: 'post', path: '/compat/synap/api/v1/memories/upload', tag: 'synap-sdk', summary: "Synap's Python SDK: create memory from a file (`file`) or `text`", permission: 'ingest', multipart: SynapSdkUploadFields, errors: INGEST_ERRORS, response: SynapSdkQueued },
  { method: 'get', path: `/compat/synap/api/v1/memories/status/${ID}`, tag: 'synap-sdk', summary: "Synap's Python SDK: ingestion status, with document_id, queued_at, started_at, completed_at, memory_ids (UUIDs, up to 1,000) and error_message", permission: 'read', response: SynapSdkStatus },
  { method: 'get', path: `/compat/synap/api/v1/memories/${ID}`, tag: 'synap-sdk', summary: "Synap's Python SDK: get memory (id as a UUID or mem_<hex>)", permission: 'read', response: SynapSdkMemory },
  { method: 'patch', path: `/compat/synap/api/v1/memories/${ID}`, tag: 'synap-sdk', summary: "Synap's Python SDK: update memory (`document` or `content`, merge_strategy)", permission: 'write', body: SynapMemoryUpdate, response: SynapSdkMemory },
  { method: 'post', path: '/compat/synap/api/v1/memories/forget', tag: 'synap-sdk', summary: "Synap's Python SDK memories.forget(): the memories of one user (user_id required; customer_id) whose cosine similarity to the description reaches 0.3, up to 20 — listed (mode preview, nothing filed) or deleted with their copies (mode direct, needs `write`) → {status: nothing_matches | preview | deleted | partial, candidates, deleted_ids, failed_ids, still_present_in, may_be_incomplete}; 503 when the embedding model cannot match", permission: 'search', body: SynapForgetRequest, response: SynapForgetResponse },
  { method: 'delete', path: `/compat/synap/api/v1/memories/${ID}`, tag: 'synap-sdk', summary: "Synap's Python SDK: delete memory → {memory_id, deleted_at}", permission: 'write', response: SynapSdkDeleted },
];
// Tex's SDK calls supermemory's documents, search and forget under its own base URL, filed by user (api/compat/tex-containers.ts).
OPERATIONS.push(...texSupermemoryCalls(OPERATIONS));

const schema = (type: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(type, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

function queryParameters(query: z.ZodType) {
  const json = schema(query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({ name, in: 'query', required: json.required?.includes(name) ?? false, schema: property }));
}

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate the requests. */
export function openApiDocument(extra: Operation[] = []) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of [...OPERATIONS, ...extra]) {
    const parameters = [
      ...(op.path.includes(ID) ? [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }] : []),
      ...(op.query ? queryParameters(op.query) : []),
    ];
    const status = String(op.status ?? 200);
    const body = op.response ? { content: { 'application/json': { schema: schema(op.response, 'output') } } } : {};
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      tags: [op.tag],
      summary: op.summary,
      description: op.permission ? `Requires the \`${op.permission}\` permission.` : undefined,
      parameters: parameters.length ? parameters : undefined,
      requestBody: op.body
        ? { required: true, content: { 'application/json': { schema: schema(op.body, 'input') } } }
        : op.multipart
          ? { required: true, content: { 'multipart/form-data': { schema: withFile(schema(op.multipart, 'input')) } } }
          : undefined,
      responses: {
        [status]: { description: status === '204' ? 'No content' : 'Success', ...body },
        ...Object.fromEntries(Object.entries(op.alsoSuccess ?? {}).map(([other, description]) => [other, { description, ...body }])),
        ...errorResponses(op),
      },
      ...(op.public ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Cairn API', version: '0.1.0', description: 'Durable memory ingestion for AI agents: the native v1 API and five vendor-compatible surfaces.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}

/**
 * What the document says a route answers with a status, for a concrete path (`/v1/jobs/abc`): what
 * the tests hold every answer they receive to. `documented` is false for a status the route's entry
 * does not list; `schema` is the body's, when it has one. Undefined for a path the document has no
 * entry for. A literal path wins over a template (`/compat/synap/v1/memories/batch` over `…/{id}`).
 */
export function documentedAnswer(method: string, path: string, status: number): { documented: boolean; schema?: z.ZodType } | undefined {
  const op = operationOf(method, path);
  if (!op) return undefined;
  if (status === (op.status ?? 200) || status in (op.alsoSuccess ?? {})) return { documented: true, schema: op.response };
  const { validation, validationBody, body } = errorShapes(op);
  const errors = errorStatuses(op);
  if (status === validation && errors.validation) return { documented: true, schema: validationBody };
  if (errors.others.includes(status)) return { documented: true, schema: op.public ? undefined : body };
  return { documented: false };
}

/** The documented operation a request is for (a literal path over a template), if any. */
function operationOf(method: string, path: string): Operation | undefined {
  const route = path.split('?')[0]!;
  return OPERATIONS.filter((candidate) => candidate.method === method.toLowerCase() && templateMatches(candidate.path, route)).sort(
    (a, b) => Number(a.path.includes(ID)) - Number(b.path.includes(ID)),
  )[0];
}

/**
 * A request's route as Express names it (`/v1/jobs/:id`), for one answered before routing (a bad key, a
 * body that is no JSON): the metrics then count it under its route, not "unmatched".
 */
export function documentedRoute(method: string, path: string): string | undefined {
  return operationOf(method, path)?.path.replaceAll(ID, ':id');
}

const templateMatches = (template: string, route: string): boolean => {
  const [literal, ...rest] = template.split(ID);
  if (rest.length === 0) return template === route;
  const suffix = rest.join(ID);
  return route.startsWith(literal!) && route.endsWith(suffix) && route.length > literal!.length + suffix.length && !route.slice(literal!.length, route.length - suffix.length).includes('/');
};

const ERROR_DESCRIPTIONS: Record<number, string> = {
  401: 'Missing or invalid API key',
  403: 'The key lacks the permission',
  404: "Not found (another tenant's ids are not found)",
  409: 'Conflict: a duplicate (document_id, job already retried)',
  413: "Over the format's size limit",
  415: 'Unsupported file type, or a body not sent as JSON (multipart where files are taken)',
  503: 'Temporal or Elasticsearch is unavailable (or the process is shutting down): retry later',
};

const SupermemoryError = z.object({ error: z.string(), details: z.string() });

/** Each surface's error shapes: validation (status and body) and every other error's body. */
function errorShapes({ tag, errorBody }: Operation): { validation: number; validationBody: z.ZodType; body: z.ZodType } {
  if (tag === 'crosmos' || tag === 'tex') return { validation: 422, validationBody: FastApiValidation, body: FastApiError };
  if (tag === 'synap-sdk') return { validation: 422, validationBody: FastApiValidation, body: errorBody ?? FastApiError };
  if (tag === 'supermemory') return { validation: 400, validationBody: SupermemoryError, body: SupermemoryError };
  return { validation: 400, validationBody: errorBody ?? NativeError, body: errorBody ?? NativeError };
}

function errorResponses(op: Operation): Record<string, unknown> {
  const shapes = errorShapes(op);
  const json = (type: z.ZodType) => ({ 'application/json': { schema: schema(type, 'output') } });
  const responses: Record<string, unknown> = {};
  const statuses = errorStatuses(op);
  if (statuses.validation) {
    responses[String(shapes.validation)] = { description: shapes.validation === 422 ? 'Validation error (FastAPI shape)' : 'Invalid input, naming every bad field', content: json(shapes.validationBody) };
  }
  // Health probes answer their own report, described by the summary.
  for (const status of statuses.others) responses[String(status)] = { description: ERROR_DESCRIPTIONS[status] ?? 'Error', ...(op.public ? {} : { content: json(shapes.body) }) };
  return responses;
}

/** The error statuses an operation documents: validation when it takes input, and the others. */
function errorStatuses(op: Operation): { validation: boolean; others: number[] } {
  // Every authenticated call can meet a service that is down (keys, jobs and memories live there).
  // A JSON body is refused whole before its route sees it over the largest body its surface takes
  // (413), and on the native surface when it is not JSON at all (415; vendors' own parsers answer
  // their validation error).
  const jsonBody = op.body ? (op.path.startsWith('/v1/') ? [413, 415] : [413]) : [];
  const others = [...new Set([...(op.public ? [] : [401, 403, 503]), ...(op.path.includes(ID) ? [404] : []), ...jsonBody, ...(op.errors ?? [])])];
  return { validation: Boolean(op.body || op.multipart || op.query || op.path.includes(ID)), others };
}

function withFile(json: Record<string, unknown>) {
  const properties = { ...(json.properties as Record<string, unknown>), file: { type: 'string', format: 'binary' } };
  return { ...json, properties };
}

/**
 * The docs page: a listing rendered from /openapi.json by inline script (works offline), with a
 * link to a hosted viewer for users who have internet access.
 */
const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ddd}.op{margin:.6rem 0;padding:.5rem .8rem;border:1px solid #e3e3e3;border-radius:6px}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}.get{color:#1565c0}.post{color:#2e7d32}.patch,.put{color:#ef6c00}.delete{color:#c62828}
code{background:#f4f4f4;padding:0 .25rem}details pre{background:#f8f8f8;padding:.5rem;overflow:auto;font-size:12px}
</style></head><body>
<h1>Cairn API</h1>
<p>Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>. The machine-readable spec is at <a href="openapi.json">/openapi.json</a>.
With internet access you can also open it in a hosted viewer: <a id="viewer" href="https://editor.swagger.io/">Swagger Editor</a> (paste or import the spec).</p>
<div id="ops"><noscript>Enable JavaScript to list the operations, or read <a href="openapi.json">/openapi.json</a>.</noscript></div>
<script>
fetch('openapi.json').then(r=>r.json()).then(spec=>{
  const byTag={};
  for(const [path,ops] of Object.entries(spec.paths))for(const [method,op] of Object.entries(ops))(byTag[op.tags[0]]??=[]).push({path,method,op});
  const esc=s=>String(s??'').replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
  document.getElementById('ops').innerHTML=Object.entries(byTag).map(([tag,ops])=>'<h2>'+esc(tag)+'</h2>'+ops.map(({path,method,op})=>{
    const body=op.requestBody?Object.values(op.requestBody.content)[0].schema:null;
    return '<div class="op"><span class="m '+method+'">'+method+'</span> <code>'+esc(path)+'</code> — '+esc(op.summary)+
      (op.description?' <em>'+esc(op.description)+'</em>':'')+
      (body?'<details><summary>request body</summary><pre>'+esc(JSON.stringify(body,null,2))+'</pre></details>':'')+'</div>';
  }).join('')).join('');
}).catch(e=>{document.getElementById('ops').textContent='Could not load /openapi.json: '+e});
</script></body></html>`;

export function openApiRoutes(): Router {
  const router = Router();
  let cached: unknown;
  router.get('/openapi.json', (_req, res) => {
    cached ??= openApiDocument();
    res.json(cached);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  return router;
}
