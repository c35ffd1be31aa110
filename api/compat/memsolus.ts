import type { Router } from 'express';
import { z } from 'zod';
import type { JobProgress } from '../../lib/domain/job';
import { badInput, notFound } from '../../lib/errors';
import type { JobListing, JobListings } from '../../lib/job-listing';
import type { IngestJobs } from '../../lib/jobs';
import { principalOf, requirePermission } from '../auth';
import { idParam, parseWith, queryInt } from '../errors';
import { detectFileFormat, FILE_FORMATS, multipartFile } from '../uploads';
import { compatSurface, nativeErrors, WireUuid, type SurfaceDeps } from './surface';

/** Memsolus (seed 003): multipart ingest, paged job listing, job object with its lifecycle. */
export const MemsolusFormat = z.enum([...FILE_FORMATS, 'URL']);

export const MemsolusIngestFields = z.object({
  format: MemsolusFormat,
  workspace_id: WireUuid,
  user_id: z.string().min(1).max(255),
  // An empty form field is an absent one.
  agent_id: z.preprocess((value) => (value === '' ? undefined : value), z.string().min(1).max(255).optional()),
  source_url: z.preprocess((value) => (value === '' ? undefined : value), z.url({ protocol: /^https?$/ }).max(4096).optional()),
  categories: z.array(z.string().min(1).max(255)).max(20).optional(),
  options: z
    .string()
    .max(4096)
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      try {
        // "Optional JSON string": any JSON value, kept as sent under metadata.options.
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON string' });
        return z.NEVER;
      }
    }),
});

export const MemsolusJob = z.object({
  id: z.string(),
  format: MemsolusFormat,
  workspace_id: z.string(),
  user_id: z.string(),
  agent_id: z.string().nullable(),
  source_url: z.string().nullable(),
  categories: z.array(z.string()).nullable(),
  status: z.enum(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED']),
  error: z.string().nullable(),
  memories_created: z.number().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type MemsolusJob = z.infer<typeof MemsolusJob>;
export const MemsolusJobList = z.object({ data: z.array(MemsolusJob), page: z.number().int(), page_size: z.number().int(), total: z.number().int() });

export const MemsolusListQuery = z.object({
  page: queryInt(1, 10_000, 1),
  page_size: queryInt(1, 100, 20),
});

const STATUS: Record<JobProgress['status'], MemsolusJob['status']> = {
  queued: 'PENDING',
  running: 'PROCESSING',
  completed: 'COMPLETED',
  failed: 'FAILED',
  cancelled: 'FAILED',
};

function memsolusJob(job: JobProgress | JobListing): MemsolusJob {
  const scope = (job.scope ?? {}) as { space_id?: string; user_id?: string; agent_id?: string };
  const errors = job.errors ?? [];
  const finished = job.status === 'completed' || job.status === 'failed' || job.status === 'cancelled';
  return {
    id: job.job_id,
    format: (MemsolusFormat.safeParse(job.format).data ?? 'TXT') as MemsolusJob['format'],
    workspace_id: scope.space_id ?? '',
    user_id: scope.user_id ?? '',
    agent_id: scope.agent_id ?? null,
    source_url: job.source_url ?? null,
    categories: job.categories ?? null,
    status: STATUS[job.status],
    // "Error message if status is FAILED": a completed job that left some chunks out answers null here.
    error: job.status === 'cancelled' ? 'the job was cancelled' : job.status === 'failed' ? (errors.map((e) => e.message).join('; ') || null) : null,
    memories_created: finished ? (job.memories_created ?? 0) : null,
    created_at: job.created_at,
    updated_at: job.updated_at,
  };
}

/** Repeated multipart fields arrive as arrays, single ones as strings, some clients send JSON. */
function categoriesField(value: unknown): unknown {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value)) return value;
  if (typeof value === 'string' && value.trim().startsWith('[')) {
    try {
      return JSON.parse(value);
    } catch {
      throw badInput('categories: must be a JSON array of strings or repeated fields');
    }
  }
  return typeof value === 'string' ? value.split(',').map((part) => part.trim()).filter(Boolean) : value;
}

export function memsolusSurface(deps: SurfaceDeps, jobs: IngestJobs, listings: JobListings): Router {
  return compatSurface(deps, nativeErrors, (router) => {
    router.post('/v1/memories/ingest', requirePermission('ingest'), multipartFile('file'), async (req, res) => {
      const raw = req.body ?? {};
      const fields = parseWith(MemsolusIngestFields, { ...raw, categories: categoriesField(raw.categories ?? raw['categories[]']) });
      const file = req.file;
      if (!file && !fields.source_url) throw badInput('file: a file upload or a source_url is required');
      const common = {
        tenant: principalOf(req).tenant,
        documentType: fields.format === 'PDF' ? ('pdf' as const) : ('document' as const),
        scope: { spaceId: fields.workspace_id, userId: fields.user_id, agentId: fields.agent_id },
        categories: fields.categories,
        metadata: fields.options ? { options: fields.options } : undefined,
        surface: 'memsolus',
      };
      const format = file ? detectFileFormat(file, fields.format === 'URL' ? undefined : fields.format) : fields.format;
      const job = file
        ? await jobs.start({
            ...common,
            kind: 'file',
            format,
            declaredContentType: file.mimetype,
            fileName: file.originalname,
            // "At least one is required": with both, the file is what is ingested and the URL is kept
            // as where it came from (not fetched).
            sourceUrl: fields.source_url,
            content: file.buffer,
          })
        : await jobs.start({ ...common, kind: 'url', format: fields.format, sourceUrl: fields.source_url });
      // The same format and times as GET and the listing answer for it.
      const now = job.createdAt;
      const created: MemsolusJob = {
        id: job.jobId,
        format,
        workspace_id: fields.workspace_id,
        user_id: fields.user_id,
        agent_id: fields.agent_id ?? null,
        source_url: fields.source_url ?? null,
        categories: fields.categories ?? null,
        status: 'PENDING',
        error: null,
        memories_created: null,
        created_at: now,
        updated_at: now,
      };
      res.status(202).json(created);
    });

    // Memsolus callers see the ingest jobs they started here, not the tenant's jobs from other surfaces.
    router.get('/v1/ingest-jobs', requirePermission('read'), async (req, res) => {
      const query = parseWith(MemsolusListQuery, req.query);
      const { jobs: page, total } = await listings.pageByNumber(principalOf(req).tenant, { surface: 'memsolus' }, query.page, query.page_size);
      res.json({ data: page.map(memsolusJob), page: query.page, page_size: query.page_size, total });
    });

    router.get('/v1/ingest-jobs/:id', requirePermission('read'), async (req, res) => {
      const id = idParam(req.params.id, 'a job id');
      const job = await jobs.progressOrThrow(principalOf(req).tenant, id);
      // As in the listing: a job another surface started is not a Memsolus ingest job.
      if (job.surface !== 'memsolus') throw notFound(`ingest job ${id}`);
      res.json(memsolusJob(job));
    });
  }, { keyHeader: 'x-api-key' });
}
