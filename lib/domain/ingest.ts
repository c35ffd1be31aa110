import { z } from 'zod';
import { payloadTooLarge } from '../errors';
import { LooseDate } from './dates';

/** Input formats; per-format size limits follow the Memsolus seed. */
export const FORMATS = ['CONVERSATION', 'TXT', 'MARKDOWN', 'HTML', 'JSON', 'CSV', 'PDF', 'DOCX', 'URL'] as const;
export const Format = z.enum(FORMATS);
export type Format = z.infer<typeof Format>;

const MB = 1024 * 1024;
/**
 * Checked when a request is accepted (413 then, never a job that fails later) and again on the bytes a
 * job parses. CONVERSATION is Cairn's own limit, the size of the largest JSON body the API reads: the
 * Crosmos seed allows 500 messages of 100,000 characters (~50 MB), and a conversation that large is
 * refused with 413 rather than taken and left to strain one job.
 */
export const FORMAT_SIZE_LIMITS: Record<Exclude<Format, 'URL'>, number> = {
  CONVERSATION: 16 * MB,
  PDF: 20 * MB,
  CSV: 10 * MB,
  MARKDOWN: 5 * MB,
  JSON: 5 * MB,
  TXT: 5 * MB,
  HTML: 5 * MB,
  DOCX: 20 * MB,
};
export const MAX_UPLOAD_BYTES = Math.max(...Object.values(FORMAT_SIZE_LIMITS));

/** 413 for content over its format's limit: at upload, at acceptance, and in the parse stage. */
export function assertWithinFormatLimit(format: Exclude<Format, 'URL'>, bytes: number): void {
  const limit = FORMAT_SIZE_LIMITS[format];
  if (bytes > limit) throw payloadTooLarge(`${format} content is ${bytes} bytes, over the ${limit} byte limit`);
}

/** Document types of the Synap seed. */
export const DOCUMENT_TYPES = [
  'ai-chat-conversation',
  'document',
  'email',
  'pdf',
  'image',
  'audio',
  'meeting-transcript',
  'human-chat-conversation',
  'support-ticket',
  'knowledge-article',
  'note',
] as const;
export const DocumentType = z.enum(DOCUMENT_TYPES);
export type DocumentType = z.infer<typeof DocumentType>;

export const SourceKind = z.enum(['conversation', 'document', 'file', 'url']);
export type SourceKind = z.infer<typeof SourceKind>;

/** Synap's mode: `fast` takes the lighter extraction path, `long-range` the fuller one. */
export const IngestMode = z.enum(['fast', 'long-range']);
export type IngestMode = z.infer<typeof IngestMode>;

export const Scope = z.object({
  spaceId: z.string().min(1).max(255).optional(),
  containerTags: z.array(z.string().min(1).max(255)).max(100).optional(),
  orgId: z.string().min(1).max(255).optional(),
  userId: z.string().min(1).max(255).optional(),
  customerId: z.string().min(1).max(255).optional(),
  agentId: z.string().min(1).max(255).optional(),
  sessionId: z.string().min(1).max(255).optional(),
});
export type Scope = z.infer<typeof Scope>;

/**
 * Free-form metadata, copied onto every memory of a job (an Elasticsearch `flattened` field): kept to
 * what such a field takes — nesting at most 16 deep (the field's own limit is 20), each text value at
 * most 8,192 characters, each leaf's dotted key path and value together within one term of the field
 * (32,766 bytes of UTF-8, with room to spare), 64 KB of JSON in all — so an accepted job never fails
 * to index it.
 */
export const METADATA_LIMITS = { depth: 16, valueChars: 8192, termBytes: 32_000, jsonChars: 65_536 };

function metadataProblem(value: unknown, depth = 1, path = ''): string | undefined {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'string' && value.length > METADATA_LIMITS.valueChars) return `a value is over ${METADATA_LIMITS.valueChars} characters`;
    // The field indexes "path\0value" as one term for every leaf (array items included).
    const term = Buffer.byteLength(path) + 1 + Buffer.byteLength(String(value));
    return term > METADATA_LIMITS.termBytes ? `the value at ${path.slice(0, 80)} and its key path are over ${METADATA_LIMITS.termBytes} bytes together` : undefined;
  }
  if (depth > METADATA_LIMITS.depth) return `nested over ${METADATA_LIMITS.depth} levels`;
  if (Array.isArray(value)) {
    for (const inner of value) {
      const problem = metadataProblem(inner, depth + 1, path);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [key, inner] of Object.entries(value)) {
    if (key.length > 256) return 'a key is over 256 characters';
    const problem = metadataProblem(inner, depth + 1, path ? `${path}.${key}` : key);
    if (problem) return problem;
  }
  return undefined;
}

/** The limits as a zod refinement, for Metadata and for surfaces whose metadata has a narrower shape. */
export function withinMetadataLimits(value: Record<string, unknown>, context: z.RefinementCtx): void {
  // Depth first: it stops at 16 levels, where measuring the JSON would recurse through all of them.
  const problem = metadataProblem(value) ?? (JSON.stringify(value).length > METADATA_LIMITS.jsonChars ? `over ${METADATA_LIMITS.jsonChars} characters of JSON` : undefined);
  if (problem) context.addIssue({ code: 'custom', message: `metadata: ${problem}` });
}

export const Metadata = z.record(z.string(), z.unknown()).superRefine(withinMetadataLimits);
export type Metadata = z.infer<typeof Metadata>;

/** One conversation message as every surface normalises it. */
export const ConversationMessage = z.object({
  role: z.string().min(1).max(50),
  content: z.string(),
  name: z.string().max(255).optional(),
  timestamp: z.string().optional(),
  /** Position in the whole conversation (stable across re-sends that append). */
  index: z.number().int().min(0).optional(),
  /** Vendor turn id, e.g. a LoCoMo dia_id or a Tex turn hash, kept as provenance. */
  turnId: z.string().max(255).optional(),
  imageUrls: z.array(z.string()).optional(),
});
export type ConversationMessage = z.infer<typeof ConversationMessage>;

export const Conversation = z.object({
  messages: z.array(ConversationMessage).min(1),
  sessionDate: z.string().optional(),
});
export type Conversation = z.infer<typeof Conversation>;

/**
 * The one internal ingest request every API surface translates into. Content itself never travels
 * in it: the API stores bytes in the blob store first and passes the key (Temporal payload limits).
 */
export const IngestRequest = z.object({
  tenant: z.string().min(1),
  kind: SourceKind,
  format: Format,
  documentType: DocumentType.default('document'),
  mode: IngestMode.default('long-range'),
  /** Caller's id for the source (Synap document_id, supermemory conversationId, …). */
  documentId: z.string().max(512).optional(),
  /** Normalised to ISO 8601 here, whatever the surface accepted ("1:56 pm on 8 May, 2023"). */
  documentDate: LooseDate.optional(),
  title: z.string().max(1024).optional(),
  scope: Scope.default({}),
  categories: z.array(z.string().min(1).max(255)).max(20).optional(),
  metadata: Metadata.optional(),
  /** Blob key of the raw content (file bytes, text, or the normalised conversation JSON). */
  blobKey: z.string().optional(),
  /** For URL sources: fetched by the fetch activity, never by the API. */
  sourceUrl: z.string().url().optional(),
  declaredContentType: z.string().optional(),
  fileName: z.string().max(1024).optional(),
  /** Which API surface took the request, for provenance and listings. */
  surface: z.string().default('native'),
  /** Tex-style tiers: write_active stores turns at once, write_passive runs full extraction. */
  writePassive: z.boolean().default(true),
  /**
   * What an active write's upload holds: conversation turns (absent), or memories stated outright
   * (Tex's preferences), each written as it is, without extraction.
   */
  statedAs: z.literal('preferences').optional(),
});
export type IngestRequest = z.infer<typeof IngestRequest>;
export type IngestRequestInput = z.input<typeof IngestRequest>;
