import type { Format } from '../../lib/domain/ingest';
import { unsupportedMediaType } from '../../lib/errors';
import { parseConversation } from './conversation';
import { parseText } from './text';
import type { Parser } from './types';

/** One parser per format; the parse activity picks by the detected (not only declared) format. */
export const PARSERS: Partial<Record<Format, Parser>> = {
  CONVERSATION: parseConversation,
  TXT: parseText,
  MARKDOWN: parseText,
};

export function parserFor(format: Format): Parser {
  const parser = PARSERS[format];
  if (!parser) throw unsupportedMediaType(`the ${format} format is not supported`);
  return parser;
}
