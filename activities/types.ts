import type { IngestRequest } from '../lib/domain/ingest';

/** What every stage activity receives: references and ids only, never content (payload limits). */
export interface StageInput {
  jobId: string;
  sourceId: string;
  request: IngestRequest;
  /** When the job was started (every ingest workflow's input has it). */
  createdAt?: string;
  /**
   * When the content was first accepted, when this job re-does an earlier one (a retry, a
   * re-extraction): relative dates in a text without one of its own count from then.
   */
  acceptedAt?: string;
  /**
   * Set when the source is replaceable — a document sent under the caller's id, or a URL — to when
   * this version of it was accepted (a retry and a re-extraction carry the version's). Its memories
   * replace those of earlier versions once the job completes (retireEarlierVersions); an older
   * version never writes over a newer one's.
   */
  versionAt?: string;
}

/** When a job's content was first accepted (a retry or re-extraction carries the original's). */
export const acceptedAtOf = (input: StageInput): string | undefined => input.acceptedAt ?? input.createdAt;

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
  /** Where the chunks are: in pages of `pageSize` beside this key (chunk-pages.ts), or, for runs before pages, this one file. */
  chunksKey: string;
  pageSize?: number;
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
