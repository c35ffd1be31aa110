import { Router } from 'express';
import { z } from 'zod';
import { readableDate } from '../lib/domain/dates';
import type { ConversationLedger } from '../lib/conversation-ledger';
import { CONVERSATION, sendConversation } from '../lib/conversation-send';
import { DocumentType, Format, IngestMode, Metadata, type ConversationMessage, type IngestRequestInput } from '../lib/domain/ingest';
import type { IngestJobs } from '../lib/jobs';
import type { IngestContent } from '../lib/job-request';
import type { Logger } from '../lib/logger';
import { principalOf, requirePermission } from './auth';
import { acceptBatch, BatchError, sendBatch } from './batch';
import { parseWith } from './errors';
import { detectFileFormat, jsonField, multipartFile } from './uploads';
import { scopeFromWire } from '../lib/domain/scope';

export const NativeScope = z.object({
  space_id: z.string().min(1).max(255).optional(),
  container_tags: z.array(z.string().min(1).max(255)).max(100).optional(),
  org_id: z.string().min(1).max(255).optional(),
  user_id: z.string().min(1).max(255).optional(),
  customer_id: z.string().min(1).max(255).optional(),
  agent_id: z.string().min(1).max(255).optional(),
  session_id: z.string().min(1).max(255).optional(),
}).strict();

const common = {
  document_type: DocumentType.default('document'),
  document_id: z.string().min(1).max(512).optional(),
  document_date: z.iso
    .datetime({ offset: true })
    .or(z.iso.date())
    .superRefine(readableDate)
    .optional(),
  title: z.string().max(1024).optional(),
  mode: IngestMode.default('long-range'),
  scope: NativeScope.default({}),
  categories: z.array(z.string().min(1).max(255)).max(20).optional(),
  metadata: Metadata.optional(),
};

export const NativeDocumentRequest = z.object({
  /** Up to the format's size limit (CSV 10 MB, others 5 MB): over it, 413 when the job is started. */
  content: z.string().min(1),
  format: Format.exclude(['CONVERSATION', 'URL', 'PDF', 'DOCX']).default('TXT'),
  ...common,
}).strict();

export const NativeUrlRequest = z.object({
  url: z.url({ protocol: /^https?$/ }).max(4096),
  /** How to parse what the URL answers; detected from its content type when omitted. */
  format: Format.exclude(['CONVERSATION', 'URL']).optional(),
  ...common,
}).strict();

export const NativeFileFields = z.object({
  /** Checked against the file's bytes by detectFileFormat, so any string is taken here. */
  format: z.string().optional(),
  ...common,
});

export const NativeMessage = z.object({
  role: z.string().min(1).max(50),
  content: z.string().min(1).max(100_000),
  name: z.string().max(255).optional(),
  /** When it was said: a readable date (ISO 8601 best), kept as written (its offset says the speaker's zone); unreadable is a 400. */
  timestamp: z.string().max(100).superRefine(readableDate).optional(),
  /** The caller's id for the turn (e.g. a LoCoMo dia_id), returned in search provenance as turn_ids. */
  turn_id: z.string().min(1).max(255).optional(),
});

export const NativeConversationRequest = z.object({
  messages: z.array(NativeMessage).min(1).max(10_000),
  session_id: z.string().min(1).max(255).optional(),
  session_date: z
    .string()
    .max(100)
    .superRefine(readableDate)
    .optional(),
  conversation_id: z.string().min(1).max(512).optional(),
  mode: IngestMode.default('long-range'),
  scope: NativeScope.default({}),
  metadata: Metadata.optional(),
}).strict();

export const NativeBatchItem = z.discriminatedUnion('type', [
  NativeDocumentRequest.extend({ type: z.literal('document') }),
  NativeConversationRequest.extend({ type: z.literal('conversation') }),
  NativeUrlRequest.extend({ type: z.literal('url') }),
]);

export const NativeBatchRequest = z.object({
  items: z.array(z.unknown()).min(1).max(100),
  /** Reject the whole batch when any item is invalid (Synap's semantics); otherwise accept the valid ones. */
  fail_fast: z.boolean().default(false),
});

export const AcceptedJob = z.object({
  job_id: z.string(),
  source_id: z.string(),
  status: z.literal('queued'),
});
/**
 * A conversation sent with its `conversation_id` is ingested or updated: 202 when a job takes new or
 * edited messages, 200 (no job) when only removals or new attributes applied, or nothing changed.
 */
export const AcceptedConversation = z.object({
  job_id: z.string().nullable(),
  source_id: z.string(),
  status: z.enum(['queued', 'updated', 'unchanged']),
  /** With a conversation_id: messages new or edited since the last send (all of them the first time). */
  messages_added: z.number().optional(),
  messages_unchanged: z.number().optional(),
  /** With a conversation_id: stored memories of edited or removed messages, dropped (their replacements come with the job). */
  memories_replaced: z.number().optional(),
});
/** An upload's answer also names the format it was read as (detected from the bytes). */
export const AcceptedFile = AcceptedJob.extend({ format: z.string() });
/** Each accepted item as its own endpoint answers it, by its position; the others in errors. */
export const NativeBatchResponse = z.object({ results: z.array(AcceptedConversation.extend({ index: z.number().int() })), errors: z.array(BatchError) });

export const toScope = (scope: z.infer<typeof NativeScope>, sessionId?: string) => scopeFromWire(scope, sessionId);

type Ingest = IngestRequestInput & IngestContent;

const CommonFields = z.object(common);

/** The fields documents, URLs and files share, as the internal ingest request names them. */
function commonIngest(body: z.infer<typeof CommonFields>) {
  return {
    documentType: body.document_type,
    documentId: body.document_id,
    documentDate: body.document_date,
    title: body.title,
    mode: body.mode,
    scope: toScope(body.scope),
    categories: body.categories,
    metadata: body.metadata,
  };
}

export function documentIngest(tenant: string, body: z.infer<typeof NativeDocumentRequest>): Ingest {
  return {
    tenant,
    kind: 'document',
    format: body.format,
    ...commonIngest(body),
    content: body.content,
    surface: 'native',
  };
}

export function urlIngest(tenant: string, body: z.infer<typeof NativeUrlRequest>): Ingest {
  return {
    tenant,
    kind: 'url',
    format: body.format ?? 'URL',
    ...commonIngest(body),
    sourceUrl: body.url,
    surface: 'native',
  };
}

/** A native conversation's ingest request, its content (the messages) excepted. */
function conversationRequest(tenant: string, body: z.infer<typeof NativeConversationRequest>) {
  return {
    tenant,
    documentDate: body.session_date,
    mode: body.mode,
    scope: toScope(body.scope, body.session_id),
    metadata: body.metadata,
    surface: 'native' as const,
  };
}

/** The job's content: these messages, as the parse stage reads a conversation. */
const conversationContent = (messages: ConversationMessage[], body: z.infer<typeof NativeConversationRequest>) => JSON.stringify({ messages, sessionDate: body.session_date });

/** The messages as the parse stage reads them, each with its position. */
const conversationMessages = (body: z.infer<typeof NativeConversationRequest>): ConversationMessage[] =>
  body.messages.map(({ turn_id, ...message }, index) => ({ ...message, turnId: turn_id, index }));

const accepted = (job: { jobId: string; sourceId: string; status: 'queued' }) => ({ job_id: job.jobId, source_id: job.sourceId, status: job.status });

/**
 * A native conversation: ingested as sent, or, under its `conversation_id`, ingested or updated — the
 * messages sent are the conversation, and only what is new or edited goes to a job (sendConversation).
 */
async function sendNativeConversation(
  jobs: IngestJobs,
  conversations: ConversationLedger,
  log: Logger,
  tenant: string,
  body: z.infer<typeof NativeConversationRequest>,
): Promise<z.infer<typeof AcceptedConversation>> {
  const request = conversationRequest(tenant, body);
  if (!body.conversation_id) return accepted(await jobs.start({ ...CONVERSATION, ...request, content: conversationContent(conversationMessages(body), body) }));
  const sent = await sendConversation(
    jobs,
    conversations,
    {
      tenant,
      conversationId: body.conversation_id,
      sourceKey: `doc:${body.conversation_id}`,
      messages: conversationMessages(body),
      attributes: { containerTags: request.scope?.containerTags, metadata: body.metadata },
      // Tags and metadata are applied to the stored memories in place; anything else a message is
      // read in (who and where it was said, its session date, the mode) re-ingests them all.
      context: JSON.stringify([Object.entries({ ...request.scope, containerTags: undefined }).filter(([, value]) => value !== undefined).sort(), body.session_date ?? null, body.mode]),
      request,
      contentOf: (messages) => conversationContent(messages, body),
    },
    log,
  );
  return {
    job_id: sent.job?.jobId ?? null,
    source_id: sent.sourceId,
    status: sent.status,
    messages_added: sent.added,
    messages_unchanged: sent.unchanged,
    memories_replaced: sent.replaced,
  };
}

/** The native v1 ingest surface: documents, conversations, URLs, file uploads and batches. */
export function nativeIngestRoutes(jobs: IngestJobs, conversations: ConversationLedger, log: Logger): Router {
  const router = Router();
  const ingest = requirePermission('ingest');

  router.post('/v1/documents', ingest, async (req, res) => {
    const body = parseWith(NativeDocumentRequest, req.body);
    res.status(202).json(accepted(await jobs.start(documentIngest(principalOf(req).tenant, body))));
  });

  router.post('/v1/conversations', ingest, async (req, res) => {
    const answer = await sendNativeConversation(jobs, conversations, log, principalOf(req).tenant, parseWith(NativeConversationRequest, req.body));
    res.status(answer.job_id ? 202 : 200).json(answer);
  });

  router.post('/v1/urls', ingest, async (req, res) => {
    const body = parseWith(NativeUrlRequest, req.body);
    res.status(202).json(accepted(await jobs.start(urlIngest(principalOf(req).tenant, body))));
  });

  router.post('/v1/files', ingest, multipartFile('file'), async (req, res) => {
    const file = req.file;
    const fields = parseWith(NativeFileFields, {
      ...req.body,
      scope: jsonField(req.body?.scope, 'scope'),
      metadata: jsonField(req.body?.metadata, 'metadata'),
      categories: jsonField(req.body?.categories, 'categories'),
    });
    if (!file) return void res.status(400).json({ error: { code: 'bad_input', message: 'file: a multipart "file" part is required' } });
    const format = detectFileFormat(file, fields.format);
    const job = await jobs.start({
      tenant: principalOf(req).tenant,
      kind: 'file',
      format,
      ...commonIngest(fields),
      documentType: fields.document_type === 'document' && format === 'PDF' ? 'pdf' : fields.document_type,
      declaredContentType: file.mimetype,
      fileName: file.originalname,
      content: file.buffer,
      surface: 'native',
    });
    res.status(202).json({ ...accepted(job), format });
  });

  router.post('/v1/batch', ingest, async (req, res) => {
    const body = parseWith(NativeBatchRequest, req.body);
    const { tenant } = principalOf(req);
    const result = await acceptBatch(body.items, body.fail_fast, NativeBatchItem, async (item) => {
      if (item.type === 'conversation') return sendNativeConversation(jobs, conversations, log, tenant, item);
      return accepted(await jobs.start(item.type === 'document' ? documentIngest(tenant, item) : urlIngest(tenant, item)));
    });
    if (result.rejected) return void res.status(400).json({ error: { code: 'bad_input', message: 'the batch was rejected: at least one item is invalid (fail_fast)' }, errors: result.errors });
    sendBatch(res, 202, result);
  });

  return router;
}
