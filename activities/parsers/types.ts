import type { ParsedDocument } from '../../lib/domain/document';

export interface ParseContext {
  format: string;
  declaredContentType?: string;
  fileName?: string;
  sourceUrl?: string;
  /** Called as a long parse advances (PDF pages), so the activity can heartbeat. */
  onProgress?: (done: number) => void;
}

export type Parser = (bytes: Uint8Array, context: ParseContext) => Promise<ParsedDocument>;

/** A parser that recursed past V8's stack on pathologically nested input: that input's fault, not a retry's. */
export const isStackOverflow = (error: unknown): boolean => error instanceof RangeError && /call stack/i.test(error.message);
