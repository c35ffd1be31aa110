import { badInput } from '../../lib/errors';
import { SectionBuilder } from './sections';
import type { Parser } from './types';

export function decodeUtf8(bytes: Uint8Array, what: string): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/^\uFEFF/, '');
  // A binary file sent as text shows up as NULs or a flood of replacement characters.
  const bad = (text.match(/[\u0000\uFFFD]/g) ?? []).length;
  if (bad > Math.max(8, text.length * 0.01)) throw badInput(`${what} is not valid UTF-8 text`);
  return text.replace(/\r\n?/g, '\n');
}

/** Plain text: one prose section; the chunker splits it by paragraph and sentence. */
export const parseText: Parser = async (bytes, context) => {
  const text = decodeUtf8(bytes, `The ${context.format} content`);
  if (!text.trim()) throw badInput('the document contains no text');
  const builder = new SectionBuilder();
  builder.add(text);
  return builder.build({ format: 'TXT', detectedType: 'text/plain' });
};
