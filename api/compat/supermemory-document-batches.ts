import type { Router } from 'express';
import { z } from 'zod';
import { CairnError, type ErrorCode } from '../../lib/errors';
import { mapBounded } from '../../lib/map-bounded';
import type { IngestJobs } from '../../lib/jobs';
import type { SourceScopeFilters, SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { acceptBatch, nothingAcceptedStatus, type BatchError } from '../batch';
import { parseWith } from '../errors';
import type { Containers } from './containers';
import { addDocument, DocumentId, filepathFilter, SupermemoryAddRequest, Tag } from './supermemory-documents';

/**
 * supermemory's documents by the batch (`documents.batchAdd()`, `documents.deleteBulk()`): each added
 * document is an add of its own (a job), each deleted one a delete of its source with its memories.
 * Shapes from the `supermemory` npm SDK's types (4.25).
 */

/** The most documents one batch adds (as `POST /v1/batch`). */
const BATCH_MAX = 100;

export const SupermemoryBatchAddRequest = z.object({
  /** Each an add's body, or its content alone. */
  documents: z.array(z.unknown()).min(1).max(BATCH_MAX),
  /** What every document gets unless it says otherwise (its metadata is merged over these). */
  containerTag: Tag.optional(),
  containerTags: SupermemoryAddRequest.shape.containerTags,
  filepath: SupermemoryAddRequest.shape.filepath,
  metadata: SupermemoryAddRequest.shape.metadata,
  taskType: SupermemoryAddRequest.shape.taskType,
  content: z.null().optional(),
});

/** One document of a batch: an add's body, or a string, its content. */
const BatchDocument = z.preprocess((item) => (typeof item === 'string' ? { content: item } : item), SupermemoryAddRequest);

const BatchResult = z.object({
  /** The document's id (its job's); empty for one not added. */
  id: z.string(),
  status: z.enum(['queued', 'error']),
  error: z.string().optional(),
  details: z.string().optional(),
});

export const SupermemoryBatchAddResponse = z.object({ results: z.array(BatchResult), success: z.number().int(), failed: z.number().int() });

export const SupermemoryDeleteBulkRequest = z
  .object({
    /** Document ids (what an add answered), at most 100. */
    ids: z.array(DocumentId).min(1).max(100).optional(),
    /** Every document holding any of these tags. */
    containerTags: z.array(Tag).min(1).max(100).optional(),
    /** A file path, or with a trailing "/" every path under it (with containerTags: both). */
    filepath: z.string().min(1).max(1000).optional(),
  })
  .refine((body) => (body.ids === undefined) !== (body.containerTags === undefined && body.filepath === undefined), {
    message: 'give ids, or containerTags and/or filepath (not both, and not nothing: a bulk delete never means every document)',
    path: ['ids'],
  });

export const SupermemoryDeleteBulkResponse = z.object({
  deletedCount: z.number().int(),
  success: z.boolean(),
  containerTags: z.array(z.string()).optional(),
  /** Documents left: not found, still being processed, or past what one request deletes. */
  errors: z.array(z.object({ id: z.string(), error: z.string() })).optional(),
});

/** How many rounds of the bulk delete (each up to lib/sources.ts BULK sources) one request runs. */
const DELETE_ROUNDS = 20;

export function supermemoryDocumentBatchRoutes(router: Router, jobs: IngestJobs, sources: SourceStore, containers: Containers): void {
  router.post('/v3/documents/batch', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(SupermemoryBatchAddRequest, req.body);
    const shared = { containerTag: body.containerTag, containerTags: body.containerTags, filepath: body.filepath };
    const outcome = await acceptBatch(body.documents, false, BatchDocument, async (document) => {
      const tagged = document.containerTag !== undefined || document.containerTags !== undefined;
      const metadata = body.metadata || document.metadata ? { ...body.metadata, ...document.metadata } : undefined;
      const job = await addDocument(jobs, containers, req, { ...document, ...(tagged ? {} : shared), filepath: document.filepath ?? body.filepath, metadata });
      return { id: job.jobId };
    });
    // Nothing accepted is the batch's failure, as on every surface: 503 when a service was down (retry it), else what the documents share.
    if (outcome.results.length === 0) throw batchFailure(outcome.errors, 'documents', 'no document was added');
    const results: z.infer<typeof BatchResult>[] = body.documents.map(() => ({ id: '', status: 'error' }));
    for (const { index, id } of outcome.results) results[index] = { id, status: 'queued' };
    for (const { index, code, message } of outcome.errors) results[index] = { id: '', status: 'error', error: code, details: message };
    res.json({ results, success: outcome.results.length, failed: outcome.errors.length } satisfies z.infer<typeof SupermemoryBatchAddResponse>);
  });

  // As DELETE /v1/sources/:id for each document named, or POST /v1/sources/delete for the filters.
  router.delete('/v3/documents/bulk', requirePermission('write'), async (req, res) => {
    const body = parseWith(SupermemoryDeleteBulkRequest, req.body);
    const { tenant } = principalOf(req);
    const errors: { id: string; error: string }[] = [];
    let deletedCount = 0;
    if (body.ids) {
      // A document is its job: its source goes (with every version), as documents.delete() removes it.
      const sourceOf = new Map<string, string>();
      await mapBounded([...new Set(body.ids)], 8, async (id) => {
        const progress = await jobs.progress(tenant, id);
        // Another container's document, as another tenant's, is not found.
        if (progress && containers.holds(req, progress.scope, undefined)) sourceOf.set(id, progress.source_id);
        else errors.push({ id, error: `document ${id} not found` });
      });
      // No source named is no filter at all, which deleteAll would read as every source: never sent.
      const named = [...new Set(sourceOf.values())];
      const deletion = named.length > 0 ? await sources.deleteAll(tenant, { source_ids: named }) : { refused: [] };
      const refused = new Map(deletion.refused.map(({ source_id: sourceId, open_job_ids: open }) => [sourceId, open]));
      for (const [id, sourceId] of sourceOf) {
        const open = refused.get(sourceId);
        if (open) errors.push({ id, error: `still being processed (job ${open.slice(0, 3).join(', ')}): delete it once it is done` });
        else deletedCount += 1;
      }
    } else {
      // The documents documents.list shows for these filters, by their own tags and path: a destructive
      // reach, so within the caller's own containers (Tex: the key's own user, unless one is named).
      const filters: SourceScopeFilters = { ...containers.ownFiltersOf(req, body.containerTags), ...filepathFilter(body.filepath), records_only: true };
      let left = 0;
      for (let round = 0; round < DELETE_ROUNDS; round += 1) {
        const deletion = await sources.deleteAll(tenant, filters);
        deletedCount += deletion.sources_deleted;
        left = deletion.remaining - deletion.refused.length;
        if (round === DELETE_ROUNDS - 1 || left === 0 || deletion.sources_deleted === 0) {
          for (const { open_job_ids: open } of deletion.refused) for (const id of open) errors.push({ id, error: 'still being processed: delete it once it is done' });
          break;
        }
      }
      if (left > 0) errors.push({ id: '(more)', error: `${left} more documents match: send the request again` });
    }
    res.json({
      deletedCount,
      success: errors.length === 0,
      ...(body.containerTags ? { containerTags: body.containerTags } : {}),
      ...(errors.length ? { errors } : {}),
    } satisfies z.infer<typeof SupermemoryDeleteBulkResponse>);
  });
}

/** A batch's items that failed as one error: the status they share (lib/batch), each named (`<field>.<index>`) after what is said first. */
export function batchFailure(errors: BatchError[], field: string, said: string): CairnError {
  const codes = new Set(errors.map((error) => (error.code === 'validation_error' ? 'bad_input' : error.code)));
  const code = nothingAcceptedStatus(errors) >= 500 ? 'upstream_failure' : codes.size === 1 ? ([...codes][0] as ErrorCode) : 'bad_input';
  return new CairnError(code, `${said}: ${errors.map(({ index, message }) => `${field}.${index}: ${message}`).join('; ')}`);
}
