import type { Chunk } from '../domain/document';
import type { DocumentType, IngestMode } from '../domain/ingest';
import type { MemoryType } from '../domain/memory';

export interface ExtractionContext {
  documentType: DocumentType;
  mode: IngestMode;
  /** Anchor for relative dates ("yesterday", "last week"): the session or document date. */
  referenceDate?: string;
  format: string;
}

export interface ExtractedEntity {
  name: string;
  /** person, place, organization, date, thing, … */
  type: string;
}

export interface ExtractedMemory {
  text: string;
  type: MemoryType;
  confidence: number;
  entities: ExtractedEntity[];
  eventDates?: string[];
  /** The chunk the memory came from (provenance). */
  chunkIndex: number;
  /** Neighbouring conversation turns, searched and embedded with the memory but never shown as it. */
  context?: string;
}

export interface ExtractionUsage {
  tokensIn: number;
  tokensOut: number;
}

/** Turns chunks into typed memories. Implementations: rule/NLP (local default) and OpenAI structured outputs. */
export interface Extractor {
  readonly name: string;
  /** Whether extraction is work on this process's CPU (local NLP), not a call to a remote model. */
  readonly cpuBound?: boolean;
  /**
   * Whether each memory it makes of a chunk has the chunk's exact text, and no context of its own: then
   * what indexing will embed is known before extraction runs, and the model can start on it at once.
   */
  readonly keepsChunkText?: boolean;
  extract(chunks: Chunk[], context: ExtractionContext): Promise<{ memories: ExtractedMemory[]; usage: ExtractionUsage }>;
}
