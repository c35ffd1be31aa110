import type { IngestRequest } from '../lib/domain/ingest';

/** What every stage activity receives: references and ids only, never content (payload limits). */
export interface StageInput {
  jobId: string;
  sourceId: string;
  request: IngestRequest;
}

export interface FetchResult {
  blobKey: string;
  bytes: number;
  contentType?: string;
  finalUrl?: string;
}

export interface ParseResult {
  parsedKey: string;
  characters: number;
  detectedType: string;
  /** The format the bytes were parsed as (may differ from the declared one, e.g. a "PDF" that is a DOCX). */
  detectedFormat?: string;
  title?: string;
  /** Carried here so later stages need not re-read the parsed blob for it. */
  sessionDate?: string;
  pages?: number;
}

export interface ChunkResult {
  chunksKey: string;
  chunks: number;
  tokens: number;
}

export interface BatchRange {
  batch: number;
  start: number;
  end: number;
}

export interface ExtractResult {
  memoriesKey: string;
  memories: number;
  tokensIn: number;
  tokensOut: number;
}

export interface ResolveResult {
  resolvedKey: string;
  entities: number;
}

export interface IndexResult {
  indexed: number;
  memoryIds: string[];
}
