import type { Router } from 'express';
import { z } from 'zod';
import { LooseDate } from '../../lib/domain/dates';
import { Metadata } from '../../lib/domain/ingest';
import { asUuid, sha256 } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
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

export function crosmosSurface(deps: SurfaceDeps, jobs: IngestJobs): Router {
  return compatSurface(deps, fastApiErrors, (router) => {
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
  });
}
