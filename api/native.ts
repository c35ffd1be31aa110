import { Router } from 'express';
import { z } from 'zod';
import { DocumentType, Format, IngestMode, Metadata } from '../lib/domain/ingest';
import type { IngestJobs } from '../lib/jobs';
import { principalOf, requirePermission } from './auth';
import { parseWith } from './errors';

export const NativeScope = z.object({
  space_id: z.string().min(1).max(255).optional(),
  container_tags: z.array(z.string().min(1).max(255)).max(100).optional(),
  org_id: z.string().min(1).max(255).optional(),
  user_id: z.string().min(1).max(255).optional(),
  customer_id: z.string().min(1).max(255).optional(),
  agent_id: z.string().min(1).max(255).optional(),
  session_id: z.string().min(1).max(255).optional(),
});

export const NativeDocumentRequest = z.object({
  content: z.string().min(1).max(5 * 1024 * 1024),
  format: Format.exclude(['CONVERSATION', 'URL', 'PDF', 'DOCX']).default('TXT'),
  document_type: DocumentType.default('document'),
  document_id: z.string().min(1).max(512).optional(),
  document_date: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  title: z.string().max(1024).optional(),
  mode: IngestMode.default('long-range'),
  scope: NativeScope.default({}),
  categories: z.array(z.string().min(1).max(255)).max(20).optional(),
  metadata: Metadata.optional(),
});

export const NativeMessage = z.object({
  role: z.string().min(1).max(50),
  content: z.string().min(1).max(100_000),
  name: z.string().max(255).optional(),
  timestamp: z.string().optional(),
});

export const NativeConversationRequest = z.object({
  messages: z.array(NativeMessage).min(1).max(10_000),
  session_id: z.string().min(1).max(255).optional(),
  session_date: z.string().optional(),
  conversation_id: z.string().min(1).max(512).optional(),
  mode: IngestMode.default('long-range'),
  scope: NativeScope.default({}),
  metadata: Metadata.optional(),
});

export function toScope(scope: z.infer<typeof NativeScope>, sessionId?: string) {
  return {
    spaceId: scope.space_id,
    containerTags: scope.container_tags,
    orgId: scope.org_id,
    userId: scope.user_id,
    customerId: scope.customer_id,
    agentId: scope.agent_id,
    sessionId: sessionId ?? scope.session_id,
  };
}

/** The native v1 surface: ingest documents and conversations, poll jobs. */
export function nativeRoutes(jobs: IngestJobs): Router {
  const router = Router();

  router.post('/v1/documents', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(NativeDocumentRequest, req.body);
    const { tenant } = principalOf(req);
    const job = await jobs.start({
      tenant,
      kind: 'document',
      format: body.format,
      documentType: body.document_type,
      documentId: body.document_id,
      documentDate: body.document_date,
      title: body.title,
      mode: body.mode,
      scope: toScope(body.scope),
      categories: body.categories,
      metadata: body.metadata,
      content: body.content,
      surface: 'native',
    });
    res.status(202).json({ job_id: job.jobId, source_id: job.sourceId, status: job.status });
  });

  router.post('/v1/conversations', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(NativeConversationRequest, req.body);
    const { tenant } = principalOf(req);
    const job = await jobs.start({
      tenant,
      kind: 'conversation',
      format: 'CONVERSATION',
      documentType: 'ai-chat-conversation',
      documentId: body.conversation_id,
      documentDate: body.session_date,
      mode: body.mode,
      scope: toScope(body.scope, body.session_id),
      metadata: body.metadata,
      surface: 'native',
      content: JSON.stringify({ messages: body.messages, sessionDate: body.session_date }),
    });
    res.status(202).json({ job_id: job.jobId, source_id: job.sourceId, status: job.status });
  });

  router.get('/v1/jobs/:id', requirePermission('read'), async (req, res) => {
    const { tenant } = principalOf(req);
    res.json(await jobs.progressOrThrow(tenant, String(req.params.id)));
  });

  return router;
}
