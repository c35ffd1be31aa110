import { z } from 'zod';
import { DocumentType, Metadata } from './ingest';
import { clipChars } from '../text/clip';

export const MEMORY_TYPES = ['fact', 'preference', 'episode', 'emotion', 'temporal_event'] as const;
export const MemoryType = z.enum(MEMORY_TYPES);
export type MemoryType = z.infer<typeof MemoryType>;

export const MemoryScope = z.object({
  tenant: z.string(),
  space_id: z.string().optional(),
  container_tags: z.array(z.string()).optional(),
  org_id: z.string().optional(),
  user_id: z.string().optional(),
  customer_id: z.string().optional(),
  agent_id: z.string().optional(),
  session_id: z.string().optional(),
});
export type MemoryScope = z.infer<typeof MemoryScope>;

export const Provenance = z.object({
  source_id: z.string(),
  job_id: z.string(),
  document_id: z.string().optional(),
  document_type: DocumentType,
  document_date: z.string().optional(),
  format: z.string(),
  surface: z.string().optional(),
  source_url: z.string().optional(),
  file_name: z.string().optional(),
  chunk_index: z.number().int(),
  char_start: z.number().int().optional(),
  char_end: z.number().int().optional(),
  turn_start: z.number().int().optional(),
  turn_end: z.number().int().optional(),
  turn_ids: z.array(z.string()).optional(),
  speakers: z.array(z.string()).optional(),
  session_date: z.string().optional(),
  /** 1-based PDF page the memory comes from. */
  page: z.number().int().optional(),
  /** When the turn was said (a conversation message's timestamp, ISO 8601). */
  timestamp: z.string().optional(),
  /**
   * A replaceable source's (a document sent under the caller's id, a URL) version this memory comes
   * from: when it was accepted. A newer version, once complete, replaces the older ones' memories.
   */
  version_at: z.string().optional(),
});
export type Provenance = z.infer<typeof Provenance>;

/**
 * Orders two versions of a source (`version_at`): below 0 when `a` is the earlier, 0 when they are the
 * same version, above 0 when `a` is the later; no version (written before versions were kept) is the
 * earliest of all.
 */
export function versionOrder(a: string | undefined, b: string | undefined): number {
  // One that does not read as a date (never written by Cairn) counts as no version.
  const at = (version: string | undefined) => (version === undefined || Number.isNaN(Date.parse(version)) ? -Infinity : Date.parse(version));
  const [x, y] = [at(a), at(b)];
  return x === y ? 0 : x < y ? -1 : 1;
}

export const EntityRef = z.object({ id: z.string(), name: z.string(), type: z.string() });
export type EntityRef = z.infer<typeof EntityRef>;

/** A memory document as stored in Elasticsearch (the embedding lives beside it, not in API answers). */
export const Memory = z.object({
  id: z.string(),
  tenant: z.string(),
  text: z.string(),
  type: MemoryType,
  confidence: z.number().min(0).max(1),
  entities: z.array(EntityRef).default([]),
  scope: MemoryScope,
  provenance: Provenance,
  categories: z.array(z.string()).optional(),
  metadata: Metadata.optional(),
  /** Normalised dates the memory talks about (temporal_event), ISO 8601. */
  event_dates: z.array(z.string()).optional(),
  created_at: z.string(),
  updated_at: z.string().nullable().optional(),
});
export type Memory = z.infer<typeof Memory>;

export interface StoredMemory extends Memory {
  /** Neighbouring conversation turns: matched by BM25 with a lower weight, and embedded with the text. */
  context?: string;
  /** `text` and `context` as stemmed topic words, for BM25 that matches across word forms. */
  stems?: string;
  context_stems?: string;
  embedding?: number[];
  embedding_model?: string;
}

/**
 * What a memory's vector embeds: its text, followed by its neighbouring turns when it is a turn of a
 * conversation. A reply ("You'll be an awesome mom!") says little alone; with the turn it answers, its
 * vector lands near questions about what was discussed. On LoCoMo this lifted kNN recall@10 from 0.47 to
 * 0.57 and, with kNN weighing more in the fusion, hybrid from 0.77 to 0.80. Every writer of a memory
 * vector (ingest, edit, re-embed, reindex) embeds this, so vectors stay comparable.
 */
/** A neighbouring turn as a memory's context holds it: clipped, so a long turn does not drown the memory. */
export const clipTurn = (text: string, maxChars = 400) => (text.length > maxChars ? `${clipChars(text, maxChars)}…` : text);

export function embeddingText(memory: { text: string; context?: string | null }): string {
  return memory.context ? `${memory.text}\n${memory.context}` : memory.text;
}

/**
 * A memory as the API shows it: without its vector, stems and neighbouring-turn context (internal to
 * search, and another memory's words).
 */
/**
 * What a memory says, as one thing said: the same text from the same turns of the same source (a Tex
 * turn is stored twice, as its active fragment and in its passive enrichment). Search answers such
 * copies once, and forgetting one forgets them all. Undefined for a memory of no turns.
 */
export function sayingKey(memory: Pick<Memory, 'text' | 'provenance'>): string | undefined {
  const turns = memory.provenance.turn_ids;
  return turns?.length ? `${memory.provenance.source_id}\u0000${turns.join(',')}\u0000${memory.text}` : undefined;
}

export function publicMemory({ embedding: _embedding, embedding_model: _model, stems: _stems, context: _context, context_stems: _contextStems, ...memory }: StoredMemory): Memory {
  return memory;
}
