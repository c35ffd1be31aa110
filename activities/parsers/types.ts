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
