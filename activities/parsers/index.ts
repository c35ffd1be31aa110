import { parseConversation } from './conversation';
import { parseCsv } from './csv';
import type { DocumentFormat } from './detect';
import { parseDocx } from './docx';
import { parseHtml } from './html';
import { parseJson } from './json';
import { parseMarkdown } from './markdown';
import { parsePdf } from './pdf';
import { parseText } from './text';
import type { Parser } from './types';

/** One parser per format; the parse activity picks by the detected (not only declared) format. */
export const PARSERS: Record<DocumentFormat, Parser> = {
  CONVERSATION: parseConversation,
  TXT: parseText,
  MARKDOWN: parseMarkdown,
  HTML: parseHtml,
  JSON: parseJson,
  CSV: parseCsv,
  PDF: parsePdf,
  DOCX: parseDocx,
};

export function parserFor(format: DocumentFormat): Parser {
  return PARSERS[format];
}

export { detectFormat, type DocumentFormat } from './detect';
