import { randomUUID } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { DocumentType, FORMAT_SIZE_LIMITS, IngestMode, Metadata } from '../../lib/domain/ingest';
import { errorLine, isFinalStatus, jobTimes, type JobProgress } from '../../lib/domain/job';
import type { Memory } from '../../lib/domain/memory';
import { asUuid, fromUuid } from '../../lib/ids';
import { badInput } from '../../lib/errors';
import type { IngestJobs, StartedJob } from '../../lib/jobs';
import type { MemoryStore } from '../../lib/memories';
import type { MemoryListings } from '../../lib/memory-listings';
import { principalOf, requirePermission } from '../auth';
import { acceptBatch, BatchError, nothingAcceptedStatus } from '../batch';
import { idParam, parseWith, withStatus } from '../errors';
import { detectFileFormat, jsonField, multipartFile } from '../uploads';
import { compatSurface, fastApiErrors, type SurfaceDeps } from './surface';
import { ingestionStatus, SynapBatchCreate, SynapCreateMemory, SynapIngestionStatus, SCOPE_LADDER_REFUSED, SynapMemory, synapMemory, synapUpdateOf } from './synap';
import type { SearchDeps } from '../../lib/search/execute';
import { synapForgetRoutes } from './synap-forget';
import { synapIngestions } from './synap-ingestions';

/**
 * Synap as its Python SDK (maximem-synap 0.6) speaks it, mounted at /compat/synap/api so that
 * `SDKConfig(api_base_url=<cairn>/compat/synap)` works unchanged:
 *   GET    /v1/auth/whoami                 who the key is (client_id: the tenant)
 *   POST   /v1/memories/create             create   → 200 {ingestion_id, document_id, status, queued_at}
 *   POST   /v1/memories/batch              batch    → 200 {batch_id, total, succeeded, failed, results, errors}
 *   POST   /v1/memories/upload             a file (multipart `file`) or `text`, as create
 *   GET    /v1/memories/status/:id         ingestion status, with the SDK's fields
 *   GET    /v1/memories/:id                get (the memory id as a UUID, or mem_<hex>)
 *   PATCH  /v1/memories/:id                update (`document` is the new content)
 *   DELETE /v1/memories/:id                delete   → 200 {memory_id, deleted_at}
 *   POST   /v1/memories/forget             the memories of one user a description matches (synap-forget.ts)
 * The same operations as the seed's routes (synap.ts), answered the way the SDK reads them: it takes
 * 200 or 204 as success (a 201 is an error to it), reads ids as UUIDs, and errors from FastAPI's
 * `detail`.
 */

/** Create's answer as the SDK reads it. */
export const SynapSdkQueued = z.object({ ingestion_id: z.string(), document_id: z.string(), status: z.literal('queued'), queued_at: z.string() });
export const SynapSdkBatchResponse = z.object({
  batch_id: z.string(),
  total: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  results: z.array(SynapSdkQueued.extend({ index: z.number().int() })),
  errors: z.array(BatchError),
});
export const SynapSdkStatus = SynapIngestionStatus.extend({
  document_id: z.string(),
  queued_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  memory_ids: z.array(z.string()),
  error_message: z.string().nullable(),
});
export const SynapSdkMemory = SynapMemory.extend({ memory_id: z.string(), memory_type: z.string(), source_document_id: z.string().nullable() });
export const SynapSdkDeleted = z.object({ memory_id: z.string(), deleted_at: z.string() });
export const SynapWhoami = z.object({ client_id: z.string() });
/** The upload's form fields (multipart: strings; metadata and scope as JSON strings). */
export const SynapSdkUploadFields = z.object({
  user_id: z.string().min(1).max(255).optional(),
  customer_id: z.string().min(1).max(255).optional(),
  relationship_type: z.enum(['b2b', 'b2c']).optional(),
  text: z.string().min(1).optional(),
  document_type: DocumentType.optional(),
  mode: IngestMode.default('long-range'),
  metadata: Metadata.optional(),
  /** Refused when given, as create's (see SynapCreateMemory). */
  scope: z.unknown().optional(),
}).refine((fields) => fields.scope === undefined || fields.scope === null, { path: ['scope'], message: SCOPE_LADDER_REFUSED });

/**
 * The upload's body: multipart with a `file` part, or, for `text` alone, a plain form (what httpx sends
 * when there is no file), up to the TXT limit.
 */
const multipart = multipartFile('file');
const form = express.urlencoded({ extended: false, limit: FORMAT_SIZE_LIMITS.TXT + 64 * 1024 });
const fileOrForm: RequestHandler = (req, res, next) =>
  /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '') ? form(req, res, next) : multipart(req, res, next);

/** How many memory ids an ingestion's status lists (the SDK reads them to fetch each one). */
const MAX_STATUS_MEMORY_IDS = 1000;

/** A memory id as the SDK sends it: the UUID form of mem_<32 hex>, or mem_<hex> itself. */
function memoryIdOf(value: unknown): string {
  const id = fromUuid('mem', idParam(value, 'a memory id'));
  return parseWith(z.object({ id: z.string().regex(/^mem_[0-9a-f]{16,64}$/, 'a memory id is a UUID or looks like mem_<hex>') }), { id }).id;
}

/** A memory as the SDK reads it: the seed's fields, and the SDK's names for the id, type and document. */
function sdkMemory(memory: Memory): z.infer<typeof SynapSdkMemory> {
  const seed = synapMemory(memory);
  return { ...seed, memory_id: asUuid(memory.id), memory_type: memory.type, source_document_id: seed.source.document_id };
}

function queued(job: StartedJob, documentId: string | undefined): z.infer<typeof SynapSdkQueued> {
  return { ingestion_id: job.jobId, document_id: documentId ?? job.sourceId, status: 'queued', queued_at: job.createdAt };
}

function sdkStatus(progress: JobProgress, memoryIds: string[]): z.infer<typeof SynapSdkStatus> {
  const status = ingestionStatus(progress);
  return {
    ...status,
    document_id: progress.document_id ?? progress.source_id,
    queued_at: progress.created_at,
    ...jobTimes(progress),
    memory_ids: memoryIds.map(asUuid),
    error_message: errorLine(status.errors),
  };
}

export function synapSdkSurface(
  deps: SurfaceDeps,
  jobs: IngestJobs,
  memories: MemoryStore,
  listings: MemoryListings,
  es: ElasticsearchClient,
  sourcesIndex: string,
  search: SearchDeps,
): Router {
  const { create } = synapIngestions(jobs, es, sourcesIndex);
  return compatSurface(deps, fastApiErrors, (router) => {
    synapForgetRoutes(router, search, memories);
    router.get('/v1/auth/whoami', (req, res) => {
      res.json({ client_id: principalOf(req).tenant });
    });

    router.post('/v1/memories/create', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(SynapCreateMemory, req.body);
      res.json(queued(await create(principalOf(req).tenant, body), body.document_id));
    });

    router.post('/v1/memories/batch', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(SynapBatchCreate, req.body);
      const { tenant } = principalOf(req);
      const result = await acceptBatch(body.documents, body.fail_fast, SynapCreateMemory, async (document) => queued(await create(tenant, document), document.document_id));
      if (result.rejected) {
        return void res.status(400).json({ detail: 'the batch was rejected: at least one document is invalid (fail_fast)', results: [], errors: result.errors });
      }
      const answer = { batch_id: randomUUID(), total: body.documents.length, succeeded: result.results.length, failed: result.errors.length, results: result.results, errors: result.errors };
      if (result.results.length > 0) return void res.json(answer);
      withStatus(res, nothingAcceptedStatus(result.errors)).json({ detail: 'no document of the batch was accepted', ...answer });
    });

    router.post('/v1/memories/upload', requirePermission('ingest'), fileOrForm, async (req, res) => {
      const { text, scope: _scope, relationship_type: _relationship, ...fields } = parseWith(SynapSdkUploadFields, {
        ...req.body,
        metadata: jsonField(req.body?.metadata, 'metadata'),
        scope: jsonField(req.body?.scope, 'scope'),
      });
      const file = req.file;
      if (Boolean(file) === Boolean(text)) throw badInput('send a file (the "file" part) or text, one of the two');
      const document = { ...fields, document_id: undefined, document_created_at: undefined };
      const tenant = principalOf(req).tenant;
      if (!file) return void res.json(queued(await create(tenant, { ...document, document_type: fields.document_type ?? 'document', content: text }), undefined));
      const format = detectFileFormat(file);
      const documentType = fields.document_type ?? (format === 'PDF' ? 'pdf' : 'document');
      const job = await create(tenant, { ...document, document_type: documentType }, { content: file.buffer, format, fileName: file.originalname, declaredContentType: file.mimetype });
      res.json(queued(job, undefined));
    });

    router.get('/v1/memories/status/:id', requirePermission('read'), async (req, res) => {
      const { tenant } = principalOf(req);
      const progress = await jobs.progressOrThrow(tenant, idParam(req.params.id, 'an ingestion id'));
      const ids = isFinalStatus(progress.status) ? await listings.idsOfJob(tenant, progress.job_id, MAX_STATUS_MEMORY_IDS) : [];
      res.json(sdkStatus(progress, ids));
    });

    router.get('/v1/memories/:id', requirePermission('read'), async (req, res) => {
      res.json(sdkMemory(await memories.get(principalOf(req).tenant, memoryIdOf(req.params.id))));
    });

    router.patch('/v1/memories/:id', requirePermission('write'), async (req, res) => {
      const id = memoryIdOf(req.params.id);
      res.json(sdkMemory(await memories.update(principalOf(req).tenant, id, synapUpdateOf(req.body))));
    });

    router.delete('/v1/memories/:id', requirePermission('write'), async (req, res) => {
      const id = memoryIdOf(req.params.id);
      await memories.delete(principalOf(req).tenant, id);
      res.json({ memory_id: asUuid(id), deleted_at: new Date().toISOString() });
    });
  });
}
