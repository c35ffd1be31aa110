import type { Router } from 'express';
import { z } from 'zod';
import { LooseDate } from '../../lib/domain/dates';
import { assertWithinFormatLimit, Metadata, type Format } from '../../lib/domain/ingest';
import { asUuid, sha256 } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import type { SpaceStore } from '../../lib/spaces';
import { errorLine, isFinalStatus, isPartlyCompleted, jobTimes, type JobProgress } from '../../lib/domain/job';
import { searchMemories, type SearchDeps, type SearchResult } from '../../lib/search/execute';
import { planFor } from '../../lib/search/plan';
import { principalOf, requirePermission } from '../auth';
import { idParam, parseWith } from '../errors';
import { crosmosSpaceRoutes } from './crosmos-spaces';
import { crosmosStoreRoutes, type CrosmosStores } from './crosmos-stores';
import { compatSurface, fastApiErrors, WireUuid, type SurfaceDeps } from './surface';

/** Crosmos (seed 000): POST /api/v1/conversations, FastAPI-style 422 validation errors. */
export const CrosmosConversationRequest = z.object({
  space_id: WireUuid,
  messages: z
    .array(
      z.object({
        role: z.string().min(1).max(50),
        content: z.string().min(1).max(100_000),
      }),
    )
    .min(1)
    .max(500),
  session_id: z.string().max(255).nullish(),
  // "ISO date string"; read leniently, and refused here (not by a failed job) when it is no date at all.
  session_date: z.string().max(64).pipe(LooseDate).nullish(),
  // Bounded as all metadata is, and refused here, on its own field, rather than when the job starts.
  meta: Metadata.nullish(),
});

export const CrosmosConversationResponse = z.object({
  job_id: z.guid(),
  status: z.string().default('pending'),
  source_id: z.guid(),
});

/** The content types Cairn reads a Crosmos source as (the SDK says Crosmos itself processes text and markdown). */
const SOURCE_FORMATS = { text: 'TXT', markdown: 'MARKDOWN', html: 'HTML', json: 'JSON' } as const satisfies Record<string, Format>;
const CONTENT_TYPES = ['text', 'markdown', 'conversation', 'html', 'json', 'pdf', 'image', 'audio', 'video'] as const;
type ReadContentType = keyof typeof SOURCE_FORMATS;
const isRead = (type: string): type is ReadContentType => type in SOURCE_FORMATS;

/**
 * The Crosmos SDK's `sources.ingest()` (`POST /api/v1/sources`, outside the seed): each source is a
 * document job of its own, within the space; `role` and `visibility` are accepted and not used. Every
 * source is checked before any job starts, so a batch is taken whole or refused whole.
 */
export const CrosmosSourceIngestRequest = z.object({
  space_id: WireUuid,
  sources: z
    .array(
      z
        .object({
          content: z.string().min(1),
          content_type: z.enum(CONTENT_TYPES).default('text'),
          meta: Metadata.nullish(),
          role: z.string().max(50).optional(),
          visibility: z.enum(['private', 'org']).optional(),
        })
        .superRefine((source, ctx) => {
          if (!isRead(source.content_type)) {
            ctx.addIssue({ code: 'custom', message: `Cairn reads text, markdown, html and json sources, not ${source.content_type}${source.content_type === 'conversation' ? ': send conversations to /api/v1/conversations' : ''}`, path: ['content_type'] });
          }
        }),
    )
    .min(1)
    .max(100),
});

export const CrosmosIngestAccepted = z.object({
  job_id: z.string(),
  jobs: z.array(z.object({ job_id: z.string(), source_ids: z.array(z.string()) })),
  source_ids: z.array(z.string()),
  status: z.literal('pending'),
});

/**
 * A job as the Crosmos SDK's `jobs.get_status()` reads it (`GET /api/v1/jobs/{job_id}`; the seed's
 * 202 says `pending` and names no route to follow it, the SDK does). Crosmos counts graph edges and
 * model tokens; Cairn stores no edges and counts no tokens for its local models, so both read 0.
 */
export const CrosmosJob = z.object({
  job_id: z.string(),
  status: z.enum(['pending', 'processing', 'completed', 'partial', 'failed', 'cancelled']),
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  error_message: z.string().nullable(),
  source_ids: z.array(z.string()),
  result: z
    .object({
      memory_count: z.number().int(),
      entity_count: z.number().int(),
      edge_count: z.number().int(),
      tokens_used: z.number().int(),
      source_ids: z.array(z.string()),
      failed_source_ids: z.array(z.string()),
      error_message: z.string().nullable(),
    })
    .nullable(),
});

function crosmosJob(progress: JobProgress): z.infer<typeof CrosmosJob> {
  const status = progress.status === 'queued' ? 'pending' : progress.status === 'running' ? 'processing' : isPartlyCompleted(progress) ? 'partial' : progress.status;
  const sourceId = asUuid(progress.source_id);
  const errorMessage = errorLine(progress.errors);
  const final = isFinalStatus(progress.status);
  return {
    job_id: progress.job_id,
    status,
    created_at: progress.created_at,
    ...jobTimes(progress),
    error_message: errorMessage,
    source_ids: [sourceId],
    result: final
      ? {
          memory_count: progress.memories_created,
          entity_count: progress.counts.entities,
          edge_count: 0,
          tokens_used: 0,
          source_ids: progress.status === 'completed' ? [sourceId] : [],
          failed_source_ids: progress.status === 'completed' ? [] : [sourceId],
          error_message: errorMessage,
        }
      : null,
  };
}

/**
 * The Crosmos SDK's `search.hybrid()` (`POST /api/v1/search`, outside the seed): Cairn's hybrid search
 * within the space. `score` is the query's cosine similarity to the memory; `diversify`, `graph`,
 * `rerank`, `recency_bias` and `recall_id` are accepted and not used.
 */
export const CrosmosSearchRequest = z.object({
  query: z.string().trim().min(1).max(10_000),
  space_id: WireUuid,
  limit: z.number().int().min(1).max(100).default(10),
  include_source: z.boolean().optional(),
  diversify: z.boolean().optional(),
  graph: z.boolean().optional(),
  rerank: z.boolean().optional(),
  recency_bias: z.number().nullish(),
  recall_id: z.string().max(255).optional(),
});

export const CrosmosSearch = z.object({
  query: z.string(),
  candidates: z.array(
    z.object({
      memory_id: z.string(),
      content: z.string(),
      memory_type: z.string(),
      score: z.number(),
      created_at: z.string(),
      /** When what it says happened: a date found in it, else its conversation's session date. */
      event_time: z.string().nullable(),
      /** Who said it (a conversation turn's speaker). */
      owner_name: z.string().nullable(),
      /** With include_source: the id of the source it came from. */
      source: z.string().nullable(),
    }),
  ),
});

/** When what a memory says happened: a date found in it, else its conversation's session date. */
export const eventTimeOf = (memory: Pick<SearchResult, 'event_dates' | 'provenance'>): string | null => memory.event_dates?.[0] ?? memory.provenance.session_date ?? null;

function crosmosCandidate(result: SearchResult, includeSource: boolean): z.infer<typeof CrosmosSearch>['candidates'][number] {
  return {
    memory_id: result.id,
    content: result.text,
    memory_type: result.type,
    score: result.similarity ?? result.score,
    created_at: result.created_at,
    event_time: eventTimeOf(result),
    owner_name: result.provenance.speakers?.[0] ?? null,
    source: includeSource ? asUuid(result.provenance.source_id) : null,
  };
}

export function crosmosSurface(deps: SurfaceDeps, jobs: IngestJobs, search: SearchDeps, stores: CrosmosStores & { spaces: SpaceStore }): Router {
  return compatSurface(deps, fastApiErrors, (router) => {
    crosmosStoreRoutes(router, jobs, stores);
    crosmosSpaceRoutes(router, stores.spaces);
    router.post('/api/v1/conversations', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(CrosmosConversationRequest, req.body);
      const content = JSON.stringify({ messages: body.messages, sessionDate: body.session_date ?? undefined });
      // "Auto-generated if not provided": the session the turns are filed under, derived from what was
      // sent, so a re-sent conversation is the same source in the same session, not a duplicate.
      const sessionId = body.session_id || asUuid(sha256('crosmos-session', body.space_id, content));
      const job = await jobs.start({
        tenant: principalOf(req).tenant,
        kind: 'conversation',
        format: 'CONVERSATION',
        documentType: 'ai-chat-conversation',
        documentDate: body.session_date ?? undefined,
        scope: { spaceId: body.space_id, sessionId },
        metadata: body.meta ?? undefined,
        surface: 'crosmos',
        content,
      });
      res.status(202).json({ job_id: job.jobId, status: 'pending', source_id: asUuid(job.sourceId) });
    });

    router.post('/api/v1/sources', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(CrosmosSourceIngestRequest, req.body);
      const sources = body.sources.map((source) => ({ ...source, format: SOURCE_FORMATS[source.content_type as ReadContentType] }));
      // Over a format's size limit is the whole batch's 413, before any of it starts.
      for (const source of sources) assertWithinFormatLimit(source.format, Buffer.byteLength(source.content));
      const tenant = principalOf(req).tenant;
      const started: { job_id: string; source_ids: string[] }[] = [];
      // One at a time, in order; a start that fails (a service down) fails the request, and sending it
      // again files the same content as the same sources, so the ones started first are not doubled.
      for (const source of sources) {
        const job = await jobs.start({
          tenant,
          kind: 'document',
          format: source.format,
          scope: { spaceId: body.space_id },
          metadata: source.meta ?? undefined,
          surface: 'crosmos',
          content: source.content,
        });
        started.push({ job_id: job.jobId, source_ids: [asUuid(job.sourceId)] });
      }
      res.status(202).json({ job_id: started[0]!.job_id, jobs: started, source_ids: started.flatMap((job) => job.source_ids), status: 'pending' } satisfies z.infer<typeof CrosmosIngestAccepted>);
    });

    router.post('/api/v1/search', requirePermission('search'), async (req, res) => {
      const body = parseWith(CrosmosSearchRequest, req.body);
      const { tenant } = principalOf(req);
      const outcome = await searchMemories(search, { tenant, query: body.query, plan: planFor('hybrid', body.limit), filters: { space_id: body.space_id }, similarity: true });
      res.json({ query: body.query, candidates: outcome.results.map((result) => crosmosCandidate(result, body.include_source ?? false)) });
    });

    router.get('/api/v1/jobs/:id', requirePermission('read'), async (req, res) => {
      res.json(crosmosJob(await jobs.progressOrThrow(principalOf(req).tenant, idParam(req.params.id, 'a job id'))));
    });
  });
}
