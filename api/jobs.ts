import { Router } from 'express';
import { z } from 'zod';
import { JobListing, type JobListings } from '../lib/job-listing';
import { JobFilters } from '../lib/temporal/visibility-query';
import { AcceptedJob } from './native';
import type { IngestJobs } from '../lib/jobs';
import { principalOf, requirePermission } from './auth';
import { idParam, parseWith, queryInt } from './errors';

export const JobListQuery = JobFilters.extend({
  page_size: queryInt(1, 100, 20),
  page_token: z.string().max(4096).optional(),
});

export const JobListResponse = z.object({ jobs: z.array(JobListing), next_page_token: z.string().nullable() });
export const CancellingJob = z.object({ job_id: z.string(), status: z.literal('cancelling') });
export const RetriedJob = AcceptedJob.extend({ retry_of: z.string() });

const jobIdParam = (value: unknown) => idParam(value, 'a job id');

/** Job status, listing, cancel and retry; every call is confined to the caller's tenant. */
export function jobRoutes(jobs: IngestJobs, listings: JobListings): Router {
  const router = Router();

  router.get('/v1/jobs', requirePermission('read'), async (req, res) => {
    const query = parseWith(JobListQuery, req.query);
    const { page_size, page_token, ...filters } = query;
    const page = await listings.page(principalOf(req).tenant, filters, page_size, page_token);
    res.json({ jobs: page.jobs, next_page_token: page.nextPageToken ?? null } satisfies z.infer<typeof JobListResponse>);
  });

  router.get('/v1/jobs/:id', requirePermission('read'), async (req, res) => {
    res.json(await jobs.progressOrThrow(principalOf(req).tenant, jobIdParam(req.params.id)));
  });

  router.post('/v1/jobs/:id/cancel', requirePermission('ingest'), async (req, res) => {
    const jobId = jobIdParam(req.params.id);
    await jobs.cancel(principalOf(req).tenant, jobId);
    res.status(202).json({ job_id: jobId, status: 'cancelling' });
  });

  router.post('/v1/jobs/:id/retry', requirePermission('ingest'), async (req, res) => {
    const jobId = jobIdParam(req.params.id);
    const job = await jobs.retry(principalOf(req).tenant, jobId);
    res.status(202).json({ job_id: job.jobId, source_id: job.sourceId, status: job.status, retry_of: jobId });
  });

  return router;
}
