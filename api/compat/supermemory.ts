import type { Router } from 'express';
import { z } from 'zod';
import type { ConversationLedger } from '../../lib/conversation-ledger';
import { sendConversation } from '../../lib/conversation-send';
import { withinMetadataLimits, type ConversationMessage } from '../../lib/domain/ingest';
import type { JobListings } from '../../lib/job-listing';
import type { IngestJobs } from '../../lib/jobs';
import type { Logger } from '../../lib/logger';
import type { MemoryStore } from '../../lib/memories';
import type { MemoryListings } from '../../lib/memory-listings';
import type { SearchDeps } from '../../lib/search/execute';
import type { SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { compatSurface, type ErrorShape, type SurfaceDeps } from './surface';
import { supermemoryDocumentBatchRoutes } from './supermemory-document-batches';
import { supermemoryDocumentListingRoutes } from './supermemory-document-listings';
import { supermemoryAccepted, supermemoryDocumentRoutes, type AcceptedDocument } from './supermemory-documents';
import { supermemoryMemoryCalls, supermemoryMemoryRoutes } from './supermemory-memories';
import { supermemoryContainers, type Containers } from './containers';
import { supermemoryRecallRoutes } from './supermemory-recall';
import { clipChars } from '../../lib/text/clip';

/**
 * supermemory (seed 001): POST /v4/conversations, ingest *or update* by conversationId; and, beyond the
 * seed, what its SDKs call most: documents (supermemory-documents.ts), memories (supermemory-memories.ts)
 * and recall (supermemory-recall.ts).
 */
const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImagePart = z.object({ type: z.literal('image_url'), imageUrl: z.object({ url: z.url() }) });

export const SupermemoryMessage = z.object({
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [TextPart, ImagePart]))]),
  name: z.string().max(255).optional(),
  tool_calls: z.array(z.unknown()).optional(),
  tool_call_id: z.string().max(255).optional(),
});

export const SupermemoryConversationRequest = z.object({
  conversationId: z.string().min(1).max(255),
  messages: z.array(SupermemoryMessage).min(1).max(10_000),
  containerTags: z.array(z.string().min(1).max(255)).max(100).optional(),
  // Bounded as all metadata is (Metadata): it may reach the stored memories with no job to check it.
  metadata: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
    .superRefine(withinMetadataLimits)
    .optional(),
});

export const SupermemoryConversationResponse = z.object({
  id: z.string(),
  conversationId: z.string(),
  /** queued: a job ingests new or edited messages; updated: only removals, done; unchanged: nothing to do. */
  status: z.enum(['queued', 'updated', 'unchanged']),
  jobId: z.string().nullable(),
  /** New or edited messages. */
  messagesAdded: z.number(),
  messagesUnchanged: z.number(),
  /** Stored memories of edited or removed messages, dropped (their replacements come with the job). */
  memoriesReplaced: z.number(),
});

/** supermemory answers errors as {error, details?} with the HTTP status. */
const supermemoryErrors: ErrorShape = (error) => ({
  status: error.status,
  body: {
    error: error.status === 401 ? 'Unauthorized' : error.code === 'bad_input' ? 'Invalid request parameters' : error.message,
    details: error.issues ? error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ') : error.message,
  },
});

/**
 * Text parts joined; images kept as URLs on the turn and named in its text, and tool calls named in
 * it too (what the agent looked up is worth remembering), so none of them is lost and changing one
 * counts as an edit of the message.
 */
function normalise(message: z.infer<typeof SupermemoryMessage>, index: number): ConversationMessage {
  const parts = typeof message.content === 'string' ? [{ type: 'text' as const, text: message.content }] : message.content;
  const text = parts.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
  const imageUrls = parts.flatMap((part) => (part.type === 'image_url' ? [part.imageUrl.url] : []));
  const toolCalls = (message.tool_calls ?? []).map(describeToolCall);
  const content = [text, ...imageUrls.map(describeImage), ...toolCalls].filter(Boolean).join('\n');
  return { role: message.role, content, name: message.name, index, imageUrls: imageUrls.length ? imageUrls : undefined };
}

/**
 * An image as the turn's text names it: its URL, or, for the image itself inlined as a `data:` URL
 * (what the AI SDK middleware sends for uploaded images), its type and size — base64 is no words to
 * search, and would be most of the memory. The whole URL still counts in the message's identity.
 */
export function describeImage(url: string): string {
  const inline = /^data:([^;,]*)((?:;[^;,]*)*),/i.exec(url);
  if (!inline) return `[image: ${url.length > 2_000 ? `${clipChars(url, 2_000)}…` : url}]`;
  const payload = url.length - inline[0].length;
  const bytes = /;base64/i.test(inline[2] ?? '') ? Math.floor((payload * 3) / 4) : payload;
  return `[image: ${inline[1] || 'data'}, ${bytes < 1024 ? `${bytes} bytes` : `${Math.round(bytes / 1024)} KB`}, inline]`;
}

/** An OpenAI-style call as `[tool call: name(arguments)]`; any other shape as its JSON. Capped at 2,000 characters. */
function describeToolCall(call: unknown): string {
  const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
  const body =
    fn && typeof fn.name === 'string'
      ? `${fn.name}(${typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? '')})`
      : JSON.stringify(call);
  return `[tool call: ${body.length > 2000 ? `${clipChars(body, 2000)}…` : body}]`;
}

/** What supermemory's documents, memories and recall read beside jobs: sources, job listings, memories, search and memory listings. */
export interface SupermemoryStores {
  sources: SourceStore;
  jobListings: JobListings;
  memories: MemoryStore;
  search: SearchDeps;
  listings: MemoryListings;
}

/**
 * supermemory's documents and search, filed in the containers of the surface that speaks them
 * (supermemory's, or Tex's SDK, which calls the same API).
 */
export function supermemoryDocumentRoutesIn(router: Router, jobs: IngestJobs, stores: SupermemoryStores, containers: Containers, accepted: AcceptedDocument): void {
  // Before /v3/documents/:id, whose id would take "list", "processing" or "bulk".
  supermemoryDocumentListingRoutes(router, jobs, stores.sources, stores.jobListings, containers);
  supermemoryDocumentBatchRoutes(router, jobs, stores.sources, containers);
  supermemoryDocumentRoutes(router, jobs, stores.sources, containers, accepted);
  supermemoryRecallRoutes(router, jobs, stores.search, stores.listings, containers);
}

export function supermemorySurface(deps: SurfaceDeps & { log: Logger }, jobs: IngestJobs, ledger: ConversationLedger, stores: SupermemoryStores): Router {
  return compatSurface(deps, supermemoryErrors, (router) => {
    supermemoryDocumentRoutesIn(router, jobs, stores, supermemoryContainers, supermemoryAccepted);
    supermemoryMemoryRoutes(router, stores.memories, stores.listings, supermemoryContainers, supermemoryMemoryCalls);
    router.post('/v4/conversations', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(SupermemoryConversationRequest, req.body);
      const { tenant } = principalOf(req);
      const messages = body.messages.map(normalise);
      const sent = await sendConversation(
        jobs,
        ledger,
        {
          tenant,
          conversationId: body.conversationId,
          sourceKey: `conversation:${body.conversationId}`,
          messages,
          attributes: { containerTags: body.containerTags, metadata: body.metadata },
          request: { tenant, scope: { containerTags: body.containerTags }, metadata: body.metadata, surface: 'supermemory' },
          contentOf: (toIngest) => JSON.stringify({ messages: toIngest }),
        },
        deps.log,
      );
      res.status(200).json({
        id: sent.sourceId,
        conversationId: body.conversationId,
        status: sent.status,
        jobId: sent.job?.jobId ?? null,
        messagesAdded: sent.added,
        messagesUnchanged: sent.unchanged,
        memoriesReplaced: sent.replaced,
      });
    });
  });
}
