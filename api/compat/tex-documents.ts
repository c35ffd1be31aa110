import type { RequestHandler, Router } from 'express';
import { z } from 'zod';
import { countTokens } from '../../lib/chunking/tokens';
import type { Memory } from '../../lib/domain/memory';
import { badInput, forbidden } from '../../lib/errors';
import type { IngestJobs } from '../../lib/jobs';
import { principalOf, requirePermission } from '../auth';
import { acceptBatch } from '../batch';
import { parseWith } from '../errors';
import { supermemoryDocumentRoutesIn, type SupermemoryStores } from './supermemory';
import { batchFailure } from './supermemory-document-batches';
import { deleteDocument, heldDocument, SupermemoryAddRequest, SupermemoryAddResponse, Tag, updateDocument, type AcceptedDocument } from './supermemory-documents';
import { supermemoryMemoryRoutes, TexForgetRequest, TexUpdateMemoryRequest, type MemoryCalls } from './supermemory-memories';
import { texContainers } from './tex-containers';

/**
 * What Tex's SDK calls "SuperMemory-compatible" under its own base URL: documents (/v3/documents…),
 * search (/v3/search, /v4/search), memories (/v4/memories) and profile (/v4/profile). Served by
 * supermemory's routes, filed in Tex's containers, its users (tex-containers.ts), so recall() finds
 * what they write; beside them, memories.add(), which supermemory's API has not.
 */

/**
 * What the SDK may send that Cairn does not keep, refused rather than dropped: a hierarchical scope
 * ("team:eng"), which Cairn's scope has no place for (as TexScope refuses it on a write), and
 * `documentDate`, which supermemory's documents do not carry.
 */
const UNSUPPORTED: Record<string, string> = {
  scope: 'a scope id such as "team:eng" is not supported: leave scope out (writes go to your own container, its user)',
  documentDate: 'not supported here: put the date in the content or the metadata',
};
const refuseUnsupported: RequestHandler = (req, _res, next) => {
  const sent = Object.keys(UNSUPPORTED).filter((field) => req.body?.[field] !== undefined);
  if (sent.length === 0) return next();
  next(badInput(sent.map((field) => `${field}: ${UNSUPPORTED[field]}`).join('; '), sent.map((field) => ({ path: [field], message: UNSUPPORTED[field]!, code: 'value_error' }))));
};

const TexMemory = z.object({
  content: SupermemoryAddRequest.shape.content,
  metadata: SupermemoryAddRequest.shape.metadata,
  /** Kept in the memory's metadata as `isStatic: true`. */
  isStatic: z.boolean().optional(),
  /** As a document's: adding it again replaces what was added under it. */
  customId: SupermemoryAddRequest.shape.customId,
});

export const TexMemoryWriteRequest = z.object({
  memories: z.array(TexMemory).min(1).max(100),
  containerTag: Tag.optional(),
  /** Accepted and not used: Cairn has no active tier whose idle episodes it closes. */
  inactivityTimeoutSeconds: z.number().int().min(300).max(86_400).optional(),
});

const MEMORY_AS_DOCUMENT =
  'Cairn stores each memory through its ingest pipeline, as a document of its own (stored_as "document", its id the document id): search and recall find it once its job is done (documents.get(id) says "done"); memories.forget(id=…) and update_memory(id=…) take that id';

export const TexMemoryWriteResponse = z.object({
  documentId: z.null(),
  memories: z.array(
    z.object({
      id: z.string(),
      memory: z.string(),
      isStatic: z.boolean(),
      createdAt: z.string(),
      metadata: z.record(z.string(), z.unknown()).nullable(),
      storedAs: z.literal('document'),
      documentId: z.string(),
      jobId: z.string(),
    }),
  ),
  message: z.string(),
  usage: z.object({ tokens_in: z.number().int(), tokens_out: z.number().int() }),
});

/** Tex's MemoryUpdateResponse: its SDK reads `version` as a number, so it is left out (Cairn numbers no edits; the SDK reads 0). */
export const TexUpdateMemoryResponse = z.object({
  id: z.string(),
  memory: z.string(),
  createdAt: z.string(),
  parentMemoryId: z.string().nullable(),
  rootMemoryId: z.null(),
  /** True when the earlier text no longer answers search: at once for a memory edited in place, once its job is done for a document's new version. */
  superseded: z.boolean(),
});

const texUpdateAnswer = (memory: Memory): z.infer<typeof TexUpdateMemoryResponse> => ({
  id: memory.id,
  memory: memory.text,
  createdAt: memory.updated_at ?? memory.created_at,
  parentMemoryId: null,
  rootMemoryId: null,
  superseded: true,
});

/** Tex's SDK reads the job processing a document as `jobId` (its AddResponse.job_id, None without): the document's id, a job's. */
export const TexAddResponse = SupermemoryAddResponse.extend({ jobId: z.string() });
const texAccepted: AcceptedDocument = (jobId): z.infer<typeof TexAddResponse> => ({ id: jobId, status: 'queued', jobId });

const texMemoryCalls: MemoryCalls = { forget: TexForgetRequest, update: TexUpdateMemoryRequest, answer: texUpdateAnswer };

/** A memory's id is `mem_…`; any other id forget or update is given is a document's (what memories.add answered). */
const documentIdIn = (body: { id?: string }) => (body.id !== undefined && !body.id.startsWith('mem_') ? body.id : undefined);

export function texDocumentRoutes(router: Router, jobs: IngestJobs, stores: SupermemoryStores): void {
  router.use(['/v3', '/v4'], refuseUnsupported);

  router.post('/v4/memories', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(TexMemoryWriteRequest, req.body);
    const { tenant } = principalOf(req);
    const scope = texContainers.scopeOf(req, body.containerTag === undefined ? undefined : [body.containerTag]);
    // Text, always: a memory that reads as a URL is not fetched, as a document's would be.
    const outcome = await acceptBatch(body.memories, false, TexMemory, async (memory) => {
      const metadata = memory.isStatic ? { ...memory.metadata, isStatic: true } : memory.metadata;
      const job = await jobs.start(
        { tenant, kind: 'document', format: 'TXT', content: memory.content, documentId: memory.customId, scope, metadata, surface: texContainers.surface },
        { versionOf: texContainers.sourceOfCustomId(tenant, scope, memory.customId) },
      );
      return { job, memory, metadata };
    });
    if (outcome.errors.length > 0) {
      const stored = outcome.results.map(({ index, job }) => `memories.${index} as ${job.jobId}`);
      throw batchFailure(outcome.errors, 'memories', stored.length ? `stored ${stored.join(', ')} (send only the others again); not stored` : 'no memory was stored');
    }
    res.json({
      documentId: null,
      memories: outcome.results.map(({ job, memory, metadata }) => ({
        id: job.jobId,
        memory: memory.content,
        isStatic: memory.isStatic ?? false,
        createdAt: job.createdAt,
        metadata: metadata ?? null,
        storedAs: 'document',
        documentId: job.jobId,
        jobId: job.jobId,
      })),
      message: MEMORY_AS_DOCUMENT,
      usage: { tokens_in: body.memories.reduce((sum, memory) => sum + countTokens(memory.content), 0), tokens_out: 0 },
    } satisfies z.infer<typeof TexMemoryWriteResponse>);
  });

  // forget() and update_memory() of what memories.add stored: its document, deleted or given a new version.
  router.delete('/v4/memories', requirePermission('write'), async (req, res, next) => {
    const body = parseWith(TexForgetRequest, req.body);
    const id = documentIdIn(body);
    if (id === undefined) return next();
    await deleteDocument(stores.sources, principalOf(req).tenant, await heldDocument(jobs, texContainers, req, id, body.containerTag));
    res.json({ id, forgotten: true, forgottenIds: [id] });
  });
  router.patch('/v4/memories', requirePermission('write'), async (req, res, next) => {
    const body = parseWith(TexUpdateMemoryRequest, req.body);
    const id = documentIdIn(body);
    if (id === undefined) return next();
    // A document's new version is an ingest, as documents.update() is.
    if (!principalOf(req).permissions.has('ingest')) throw forbidden('ingest');
    const job = await updateDocument({ jobs, sources: stores.sources, containers: texContainers }, req, id, { content: body.newContent, metadata: body.metadata }, body.containerTag);
    res.json({ id: job.jobId, memory: body.newContent, createdAt: job.createdAt, parentMemoryId: id, rootMemoryId: null, superseded: false } satisfies z.infer<typeof TexUpdateMemoryResponse>);
  });

  supermemoryDocumentRoutesIn(router, jobs, stores, texContainers, texAccepted);
  supermemoryMemoryRoutes(router, stores.memories, stores.listings, texContainers, texMemoryCalls);
}
