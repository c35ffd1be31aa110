import { bomlessUtf16, charsetOf, decodeAs, detectLegacyEncoding, isControlByte, supported } from '../../lib/charset';
import { badInput } from '../../lib/errors';
import { SectionBuilder } from './sections';
import type { Parser } from './types';

/**
 * Bytes → text, in the encoding they are in: a byte-order mark (UTF-8, UTF-16 LE/BE) first, then a
 * charset the sender declared (a Content-Type parameter, or an HTML page's own <meta>), then UTF-8
 * when the bytes are valid UTF-8. Otherwise: UTF-16 without its mark (told by its NULs), a legacy
 * encoding the bytes' statistics make clear (windows-1251, Shift_JIS, GB18030, EUC-KR, …), UTF-8
 * with a stray byte or two, else Windows-1252 (the superset of Latin-1 most legacy text is in).
 * Bytes that are no text at all (control bytes, NULs) are refused by name.
 */
export function decodeText(bytes: Uint8Array, what: string, options: { contentType?: string; html?: boolean } = {}): string {
  let encoding =
    byteOrderMark(bytes) ?? supported(charsetOf(options.contentType)) ?? (options.html ? supported(metaCharset(bytes)) : undefined) ?? bomlessUtf16(bytes);
  let text: string;
  if (encoding) {
    text = decodeAs(encoding, bytes);
  } else {
    text = new TextDecoder('utf-8').decode(bytes);
    // A U+FFFD written in the text (EF BF BD) is valid UTF-8, not a sign of another encoding.
    if (text.includes('\uFFFD') && !isValidUtf8(bytes)) {
      if (controlBytes(bytes) > Math.max(8, bytes.length * 0.01)) throw badInput(`${what} is not text (neither UTF-8, UTF-16 nor a single-byte encoding)`);
      // UTF-8 with a stray byte or two keeps its UTF-8 (those bytes become U+FFFD); otherwise the bytes
      // are in another encoding, as their statistics tell, or single-byte text when they do not.
      const strays = (text.match(/\uFFFD/g) ?? []).length;
      const multibyte = /[^\u0000-\u007F\uFFFD]/.test(text);
      if (!multibyte || strays > Math.max(8, text.length * 0.01)) {
        encoding = detectLegacyEncoding(bytes) ?? (multibyte ? undefined : 'windows-1252');
        if (encoding) text = decodeAs(encoding, bytes);
      }
    }
  }
  text = text.replace(/^\uFEFF/, '');
  // Binary sent as text under a declared encoding shows up as NULs or a flood of replacement characters.
  const bad = (text.match(/[\u0000\uFFFD]/g) ?? []).length;
  if (bad > Math.max(8, text.length * 0.01)) throw badInput(`${what} is not text in ${encoding ?? 'UTF-8'}`);
  return text.replace(/\r\n?/g, '\n');
}

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function byteOrderMark(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  return undefined;
}

/** <meta charset="…"> or <meta http-equiv="Content-Type" content="…; charset=…"> in the first 1,024 bytes. */
function metaCharset(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 1024));
  return /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1];
}


function controlBytes(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) if (isControlByte(byte)) count++;
  return count;
}

/** Plain text: one prose section; the chunker splits it by paragraph and sentence. */
export const parseText: Parser = async (bytes, context) => {
  const text = decodeText(bytes, `The ${context.format} content`, { contentType: context.declaredContentType });
  if (!text.trim()) throw badInput('the document contains no text');
  const builder = new SectionBuilder();
  builder.add(text);
  return builder.build({ format: 'TXT', detectedType: 'text/plain' });
};
