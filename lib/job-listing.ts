import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { JobError, JobStatus } from './domain/job';
import { wireScopeOf } from './domain/scope';
import { badInput } from './errors';
import { ingestWorkflowId, parseIngestWorkflowId } from './ids';
import { both, timestampOf } from './job-status';
import { jobMemo, type JobMemo } from './job-request';
import type { IngestJobs } from './jobs';
import { mapBounded } from './map-bounded';
import type { PendingStart } from './pending-starts';
import { openPageToken, sealPageToken } from './page-tokens';
import { decodeFields, JobFilters, statusOf, visibilityQuery } from './temporal/visibility-query';

/** How many of a tenant's open jobs openJobsOf looks through for those it is asked about. */
const OPEN_SCAN = 10_000;

/** How deep offset pagination reaches (as Elasticsearch's own result window). */
const MAX_OFFSET = 10_000;

/** A job as a listing shows it: what visibility and the job's memo hold, without its stage-by-stage progress. */
export const JobListing = z.object({
  job_id: z.string(),
  status: JobStatus,
  kind: z.string().optional(),
  format: z.string().optional(),
  document_type: z.string().optional(),
  surface: z.string().optional(),
  source_id: z.string().optional(),
  document_id: z.string().optional(),
  source_url: z.string().optional(),
  file_name: z.string().optional(),
  scope: z.record(z.string(), z.unknown()).optional(),
  categories: z.array(z.string()).optional(),
  retry_of: z.string().optional(),
  memories_created: z.number().optional(),
  errors: z.array(JobError).optional(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().optional(),
});
export type JobListing = z.infer<typeof JobListing>;

// gRPC's INVALID_ARGUMENT status code.
const INVALID_ARGUMENT = 3;
/** How long a visibility call may take before it counts as Temporal not answering. */
const VISIBILITY_DEADLINE_MS = 10_000;


/** A job still being started (answered 2xx, its start not yet acknowledged) as a listing, if it matches the filters. */
function pendingListing({ workflowInput, recordedAt }: PendingStart, filters: JobFilters): JobListing | undefined {
  const { request } = workflowInput;
  if (filters.status && filters.status !== 'queued') return undefined;
  if (filters.format && filters.format !== request.format) return undefined;
  if (filters.kind && filters.kind !== request.kind) return undefined;
  if (filters.document_type && filters.document_type !== request.documentType) return undefined;
  if (filters.surface && filters.surface !== request.surface) return undefined;
  const memo = jobMemo(workflowInput);
  return {
    job_id: workflowInput.jobId,
    status: 'queued',
    kind: request.kind,
    format: request.format,
    document_type: request.documentType,
    ...memo,
    scope: memo.scope && wireScopeOf(memo.scope),
    created_at: workflowInput.createdAt,
    updated_at: recordedAt,
  };
}

/** Jobs still being started ahead of visibility's; one whose start landed between the two reads is listed once, from visibility. */
function ahead(pending: JobListing[], visible: JobListing[]): JobListing[] {
  const listed = new Set(visible.map((job) => job.job_id));
  return [...pending.filter((job) => !listed.has(job.job_id)), ...visible];
}

/**
 * Lists a tenant's jobs from Temporal visibility (filterable by the Cairn search attributes),
 * completed by the stored summaries of finished jobs: one visibility call and one mget per page.
 */
export class JobListings {
  constructor(
    private readonly temporalClient: Client,
    private readonly jobs: IngestJobs,
    private readonly namespace: string,
    private readonly taskQueue?: string,
  ) {}

  /**
   * The tenant's jobs answered 2xx whose start is still being completed (not in visibility yet) that
   * match the filters, newest first: they head the listing, as the newest jobs. (A readdir of a
   * folder that holds only the starts under way: empty while Temporal keeps up.)
   */
  private async pending(tenant: string, filters: JobFilters): Promise<JobListing[]> {
    // Every one reads `queued`: a listing of another status needs no record read.
    if (filters.status && filters.status !== 'queued') return [];
    return (await this.jobs.pendingStarts(tenant)).flatMap((record) => pendingListing(record, filters) ?? []);
  }

  /**
   * One page. The first (no token) heads with the jobs still being started, at most `pageSize - 1` of
   * them so that the page token always continues visibility; in the rare case of more (an outage of
   * Temporal), the rest are listed once their start lands, and numbered pages (pageByNumber) show them all.
   */
  async page(tenant: string, filters: JobFilters, pageSize: number, pageToken?: string): Promise<{ jobs: JobListing[]; nextPageToken?: string }> {
    const query = visibilityQuery(tenant, filters, this.taskQueue);
    const token = pageToken ? openPageToken(pageToken, query) : undefined;
    const pending = token ? [] : (await this.pending(tenant, filters)).slice(0, pageSize - 1);
    const visible = await this.visiblePage(tenant, query, pageSize - pending.length, token, pageToken !== undefined);
    return { jobs: ahead(pending, visible.jobs), nextPageToken: visible.nextPageToken };
  }

  /**
   * The tenant's jobs that are queued or running, still being started included, whose memo `matches`
   * (the source they write, the scope and document id they were sent with), by source. Open jobs are
   * few (a worker's concurrency's worth, plus a backlog), so the tenant's are read a thousand at a time
   * and matched here; at most OPEN_SCAN are looked at. Jobs this process started lately are added by
   * their own state, as visibility lists a run only once its visibility task has run (RecentStarts).
   */
  async openJobsOf(tenant: string, matches: (memo: Partial<JobMemo>) => boolean): Promise<Map<string, string[]>> {
    const found = new Map<string, Set<string>>();
    const add = (memo: Partial<JobMemo>, jobId: string) => {
      if (memo.source_id === undefined || !matches(memo)) return;
      found.set(memo.source_id, (found.get(memo.source_id) ?? new Set()).add(jobId));
    };
    for (const { workflowInput } of await this.jobs.pendingStarts(tenant)) add(jobMemo(workflowInput), workflowInput.jobId);
    const query = `${visibilityQuery(tenant, {}, this.taskQueue)} AND ExecutionStatus = "Running"`;
    let token: Uint8Array | undefined;
    for (let scanned = 0; scanned < OPEN_SCAN; ) {
      const response = await this.visibility(() => this.temporalClient.workflowService.listWorkflowExecutions({ namespace: this.namespace, query, pageSize: 1000, nextPageToken: token }));
      for (const execution of response.executions ?? []) {
        scanned += 1;
        const ids = parseIngestWorkflowId(execution.execution?.workflowId ?? '');
        if (ids?.tenant === tenant) add(decodeFields(execution.memo?.fields) as Partial<JobMemo>, ids.jobId);
      }
      token = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
      if (!token) break;
    }
    // Started here moments ago, perhaps not in visibility yet: each one asked of Temporal by id.
    const unlisted = this.jobs.recentStarts(tenant).filter((input) => matches(jobMemo(input)) && !found.get(input.sourceId)?.has(input.jobId));
    await mapBounded(unlisted, 8, async (input) => {
      if ((await this.jobs.runStatus(tenant, input.jobId)) === 'RUNNING') add(jobMemo(input), input.jobId);
    });
    return new Map([...found].map(([sourceId, jobIds]) => [sourceId, [...jobIds]]));
  }

  /** A page of visibility, completed by the finished jobs' stored summaries. */
  private async visiblePage(tenant: string, query: string, pageSize: number, token: Uint8Array | undefined, callerToken: boolean): Promise<{ jobs: JobListing[]; nextPageToken?: string }> {
    const response = await this.visibility(() => this.temporalClient.workflowService.listWorkflowExecutions({ namespace: this.namespace, query, pageSize, nextPageToken: token }))
      .catch((error: Error & { code?: number }) => {
        // A token sealed for this very query that the server still refuses as an argument (e.g. one
        // from before a server reset) is the caller's to drop; anything else is the server's failure.
        if (callerToken && error.code === INVALID_ARGUMENT) throw badInput('page_token is no longer valid: start again without it');
        throw error;
      });
    const listings: JobListing[] = [];
    const executions = (response.executions ?? []).filter((execution) => parseIngestWorkflowId(execution.execution?.workflowId ?? '')?.tenant === tenant);
    const earlierRuns = await this.latestRunsOnly(
      tenant,
      executions.map((execution) => ({
        jobId: parseIngestWorkflowId(execution.execution!.workflowId!)!.jobId,
        runId: execution.execution?.runId ?? undefined,
        // Marked at its start (IngestJobs.startOptions): only such ids can have had several runs.
        reused: (decodeFields(execution.memo?.fields) as { reused_id?: boolean }).reused_id === true,
      })),
    );
    for (const [i, execution] of executions.entries()) {
      if (earlierRuns.has(i)) continue;
      const ids = parseIngestWorkflowId(execution.execution?.workflowId ?? '');
      if (!ids) continue;
      const attributes = decodeFields(execution.searchAttributes?.indexedFields);
      const memo = decodeFields(execution.memo?.fields) as Partial<JobMemo>;
      const first = (value: unknown) => (Array.isArray(value) ? value[0] : value) as string | undefined;
      const created = timestampOf(execution.startTime as never) ?? new Date(0).toISOString();
      const closed = timestampOf(execution.closeTime as never);
      listings.push({
        job_id: ids.jobId,
        status: statusOf(execution.status, first(attributes.CairnStatus)),
        kind: first(attributes.CairnSourceKind),
        format: first(attributes.CairnFormat),
        document_type: first(attributes.CairnDocumentType),
        surface: memo.surface,
        source_id: memo.source_id,
        document_id: memo.document_id,
        source_url: memo.source_url,
        file_name: memo.file_name,
        scope: memo.scope && wireScopeOf(memo.scope as Record<string, unknown>),
        categories: memo.categories,
        retry_of: memo.retry_of,
        // When it was accepted, as its status says (jobs started before the memo kept it: their start).
        created_at: memo.created_at ?? created,
        updated_at: closed ?? memo.created_at ?? created,
        finished_at: closed,
      });
    }
    const summaries = await this.jobs.storedSummaries(tenant, listings.filter((job) => job.finished_at).map((job) => job.job_id));
    for (const job of listings) {
      const summary = summaries.get(job.job_id);
      if (!summary) continue;
      job.memories_created = summary.memories_created;
      job.errors = summary.errors;
      // When the job itself says it ended, as its status does (visibility's close time is a little later).
      job.finished_at = summary.finished_at ?? job.finished_at;
      job.updated_at = summary.updated_at ?? job.updated_at;
    }
    const next = response.nextPageToken && response.nextPageToken.length > 0 ? sealPageToken(response.nextPageToken, query) : undefined;
    return { jobs: listings, nextPageToken: next };
  }

  /**
   * Offset pagination (Memsolus' page/page_size) over visibility's token pagination: the jobs still
   * being started come first, then visibility's, whose jobs before the page are skipped a thousand at a
   * time, reading ids only (not a call per skipped page, nor their summaries), and no further than the
   * first MAX_OFFSET jobs.
   */
  async pageByNumber(tenant: string, filters: JobFilters, page: number, pageSize: number): Promise<{ jobs: JobListing[]; total: number }> {
    const offset = (page - 1) * pageSize;
    if (offset >= MAX_OFFSET) throw badInput(`numbered pages reach the first ${MAX_OFFSET} jobs; GET /v1/jobs lists older ones, a page token at a time`);
    const query = visibilityQuery(tenant, filters, this.taskQueue);
    const pending = await this.pending(tenant, filters);
    const total = this.visibleCount(query).then((count) => count + pending.length);
    total.catch(() => undefined);
    const headed = pending.slice(offset, offset + pageSize);
    let token: Uint8Array | undefined;
    for (let left = Math.max(0, offset - pending.length); left > 0; ) {
      const step = Math.min(left, 1000);
      const skipped = await this.visibility(() => this.temporalClient.workflowService.listWorkflowExecutions({ namespace: this.namespace, query, pageSize: step, nextPageToken: token }));
      left -= step;
      token = skipped.nextPageToken && skipped.nextPageToken.length > 0 ? skipped.nextPageToken : undefined;
      if (!token) return { jobs: [], total: await total };
    }
    if (headed.length === pageSize) return { jobs: headed, total: await total };
    const [visible, count] = await both(this.visiblePage(tenant, query, pageSize - headed.length, token, false), total);
    return { jobs: ahead(headed, visible.jobs), total: count };
  }

  /** Visibility's count, and the jobs still being started that match (a start landing meanwhile may count twice). */
  async count(tenant: string, filters: JobFilters): Promise<number> {
    const [visible, pending] = await both(this.visibleCount(visibilityQuery(tenant, filters, this.taskQueue)), this.pending(tenant, filters));
    return visible + pending.length;
  }

  private async visibleCount(query: string): Promise<number> {
    const response = await this.visibility(() => this.temporalClient.workflowService.countWorkflowExecutions({ namespace: this.namespace, query }));
    return Number(String(response.count ?? 0));
  }

  /**
   * A visibility call with a deadline: a stalled server (frozen, overloaded) is a 503 after it
   * (DEADLINE_EXCEEDED is an outage: lib/errors.ts), not a request that hangs as long as it does.
   */
  private visibility<T>(call: () => Promise<T>): Promise<T> {
    return this.temporalClient.connection.withDeadline(Date.now() + VISIBILITY_DEADLINE_MS, call);
  }

  /**
   * Visibility lists every run of a workflow id; a job under a caller-derived id (a Tex write, a Synap
   * document) that was sent again after a failed run has several. Only its latest run is the job (the
   * one GET /v1/jobs/:id answers for): the others are left out, asked of Temporal by id for the jobs
   * whose memo says their id can be reused.
   */
  private async latestRunsOnly(tenant: string, rows: { jobId: string; runId?: string; reused: boolean }[]): Promise<Set<number>> {
    const dropped = new Set<number>();
    const latest = new Map<string, Promise<string | undefined>>();
    await mapBounded([...rows.entries()], 8, async ([i, row]) => {
      if (!row.reused || !row.runId) return;
      let run = latest.get(row.jobId);
      if (!run) latest.set(row.jobId, (run = this.temporalClient.workflow.getHandle(ingestWorkflowId(tenant, row.jobId)).describe().then((d) => d.runId, () => undefined)));
      const current = await run;
      if (current && current !== row.runId) dropped.add(i);
    });
    return dropped;
  }
}
