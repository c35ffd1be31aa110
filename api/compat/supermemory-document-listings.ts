import type { Router } from 'express';
import { z } from 'zod';
import type { IngestRequest } from '../../lib/domain/ingest';
import { isFinalStatus, type JobProgress } from '../../lib/domain/job';
import type { JobListings } from '../../lib/job-listing';
import { startInputOf } from '../../lib/job-status';
import type { PublicSource } from '../../lib/domain/source';
import type { IngestJobs } from '../../lib/jobs';
import { mapBounded } from '../../lib/map-bounded';
import type { SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { DOCUMENT_STATUSES, DocumentKind, documentKind, documentStatus, filepathFilter, Tag } from './supermemory-documents';
import { Expression, metadataFilter } from './supermemory-recall';
import type { Containers } from './containers';

/**
 * supermemory's listings of documents (`documents.list()`, `documents.listProcessing()`): the documents Cairn holds — its sources,
 * each under the id of the job that wrote its current version (what `client.add` answered, and what
 * `documents.get` and `documents.delete` take). Shapes from the `supermemory` npm SDK's types (4.25).
 */

/** Pages reach the first 10,000 documents (Elasticsearch's result window); narrow with the filters past that. */
const LIST_WINDOW = 10_000;
const WholeNumber = z.coerce.number().int();

export const SupermemoryDocumentListRequest = z
  .object({
    containerTags: z.array(Tag).max(100).optional(),
    /** A file path, or with a trailing "/" every path under it. */
    filepath: z.string().min(1).max(1000).optional(),
    filters: Expression.optional(),
    /** Refused when true: Cairn keeps memories, not a copy of each document to serve back. */
    includeContent: z.literal(false, { error: 'includeContent: Cairn does not serve a document\'s content back (it keeps its memories); leave it out' }).optional(),
    limit: WholeNumber.min(1).max(100).default(10),
    order: z.enum(['asc', 'desc']).default('desc'),
    page: WholeNumber.min(1).default(1),
    sort: z.enum(['createdAt', 'updatedAt']).default('createdAt'),
  })
  .refine((request) => request.page * request.limit <= LIST_WINDOW, {
    message: `page × limit may reach the first ${LIST_WINDOW} documents; narrow the list with its filters`,
    path: ['page'],
  });

const ListedDocument = z.object({
  id: z.string(),
  connectionId: z.null(),
  /** Null only for a record that never kept when it was written (none Cairn writes today). */
  createdAt: z.string().nullable(),
  customId: z.string().nullable(),
  filepath: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  status: z.enum(DOCUMENT_STATUSES),
  summary: z.null(),
  title: z.string().nullable(),
  type: DocumentKind,
  updatedAt: z.string().nullable(),
  containerTags: z.array(z.string()),
  url: z.string().nullable(),
});

export const SupermemoryDocumentListResponse = z.object({
  /** supermemory's name for the list of documents. */
  memories: z.array(ListedDocument),
  pagination: z.object({ currentPage: z.number().int(), totalItems: z.number().int(), totalPages: z.number().int(), limit: z.number().int() }),
});

const ProcessingDocument = z.object({
  id: z.string(),
  createdAt: z.string(),
  customId: z.string().nullable(),
  /** What the document was sent with (null when sent with none). */
  metadata: z.record(z.string(), z.unknown()).nullable(),
  status: z.enum(DOCUMENT_STATUSES),
  title: z.string().nullable(),
  type: DocumentKind,
  updatedAt: z.string(),
  containerTags: z.array(z.string()),
});

export const SupermemoryProcessingResponse = z.object({
  /** The newest PROCESSING_SHOWN of them. */
  documents: z.array(ProcessingDocument),
  totalCount: z.number().int(),
});

/** How many of the documents being processed the listing details (each is a read of its job's input). */
const PROCESSING_SHOWN = 100;

export function supermemoryDocumentListingRoutes(router: Router, jobs: IngestJobs, sources: SourceStore, jobListings: JobListings, containers: Containers): void {
  /** Where the jobs of these ids stand: a finished one's summary (one read for all), an open one asked of its workflow. */
  router.post('/v3/documents/list', requirePermission('read'), async (req, res) => {
    const body = parseWith(SupermemoryDocumentListRequest, req.body ?? {});
    const { tenant } = principalOf(req);
    const { sources: listed, total } = await sources.list(
      tenant,
      {
        ...containers.filtersOf(req, body.containerTags),
        ...filepathFilter(body.filepath),
        metadata: metadataFilter(body.filters),
      },
      { from: (body.page - 1) * body.limit, size: body.limit },
      { field: body.sort === 'createdAt' ? 'created_at' : 'updated_at', order: body.order },
    );
    const progress = await jobs.progressOfMany(tenant, listed.flatMap((source) => (source.last_job_id ? [source.last_job_id] : [])));
    res.json({
      memories: listed.map((source) => listedDocument(source, source.last_job_id ? progress.get(source.last_job_id) : undefined, containers)),
      pagination: { currentPage: body.page, totalItems: total, totalPages: Math.ceil(total / body.limit), limit: body.limit },
    } satisfies z.infer<typeof SupermemoryDocumentListResponse>);
  });

  // The tenant's ingest jobs still queued or running (every surface's, as documents.list lists every
  // source), newest first, each read as documents.get() reads it, with what it was sent with.
  router.get('/v3/documents/processing', requirePermission('read'), async (req, res) => {
    const { tenant } = principalOf(req);
    const open = [...new Set([...(await jobListings.openJobsOf(tenant, () => true)).values()].flat())];
    const progress = await jobs.progressOfMany(tenant, open);
    // A job that ended since the scan is no longer processing.
    const processing = [...progress.values()].filter((job) => !isFinalStatus(job.status) && containers.holds(req, job.scope, undefined)).sort((a, b) => b.created_at.localeCompare(a.created_at));
    const shown = processing.slice(0, PROCESSING_SHOWN);
    const inputs = await sentWith(tenant, shown.map((job) => job.job_id));
    res.json({
      documents: shown.map((job) => {
        const request = inputs.get(job.job_id);
        return {
          id: job.job_id,
          createdAt: job.created_at,
          customId: job.document_id ?? null,
          metadata: request?.metadata ?? null,
          status: documentStatus(job),
          title: request?.title ?? null,
          type: documentKind(job),
          updatedAt: job.updated_at,
          containerTags: containers.tagsOf(job.scope),
        };
      }),
      totalCount: processing.length,
    } satisfies z.infer<typeof SupermemoryProcessingResponse>);
  });

  /** The requests the jobs were started with: those still being started from their records, the others from their workflows' inputs. */
  async function sentWith(tenant: string, jobIds: string[]): Promise<Map<string, IngestRequest>> {
    const starting = new Map((await jobs.pendingStarts(tenant)).map(({ workflowInput }) => [workflowInput.jobId, workflowInput.request]));
    const found = new Map<string, IngestRequest>();
    await mapBounded(jobIds, 8, async (id) => {
      const request = starting.get(id) ?? (await startInputOf(jobs.handle(tenant, id)).catch(() => undefined))?.request;
      if (request) found.set(id, request);
    });
    return found;
  }
}

/** A source as a listed document, under the id of the job that wrote its current version. */
function listedDocument(source: PublicSource, progress: JobProgress | undefined, containers: Containers): z.infer<typeof ListedDocument> {
  return {
    id: source.last_job_id ?? source.id,
    connectionId: null,
    createdAt: source.created_at ?? progress?.created_at ?? null,
    customId: source.document_id ?? null,
    filepath: source.file_name ?? null,
    metadata: source.metadata ?? null,
    // Its job's summary or workflow, when Temporal and the summaries still know it.
    status: progress ? documentStatus(progress) : 'unknown',
    summary: null,
    title: source.title ?? null,
    type: documentKind(source),
    updatedAt: source.updated_at ?? source.created_at ?? progress?.updated_at ?? null,
    containerTags: containers.tagsOf(source.scope),
    url: source.source_url ?? null,
  };
}
