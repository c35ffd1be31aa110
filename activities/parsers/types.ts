import type { ParsedDocument } from '../../lib/domain/document';

export interface ParseContext {
  format: string;
  declaredContentType?: string;
  fileName?: string;
  sourceUrl?: string;
}

export type Parser = (bytes: Buffer, context: ParseContext) => Promise<ParsedDocument>;
