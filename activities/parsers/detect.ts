import type { Format } from '../../lib/domain/ingest';
import { unsupportedMediaType } from '../../lib/errors';
import { isControlByte } from '../../lib/charset';

export type DocumentFormat = Exclude<Format, 'URL'>;

export interface Detection {
  /** The format the bytes will be parsed as. */
  format: DocumentFormat;
  /** Why it differs from the declared format, when it does (kept in the job's log). */
  note?: string;
}

const startsWith = (bytes: Uint8Array, signature: number[], at = 0) => signature.every((byte, i) => bytes[at + i] === byte);
const ascii = (bytes: Uint8Array, from: number, to: number) => {
  const start = Math.min(from, bytes.length);
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.max(0, Math.min(bytes.length, to) - start)).toString('latin1');
};

// Binary types we can name but not read: refusing with the real type beats "not valid UTF-8".
const KNOWN_BINARIES: { name: string; test: (bytes: Uint8Array) => boolean }[] = [
  { name: 'a PNG image', test: (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47]) },
  { name: 'a JPEG image', test: (b) => startsWith(b, [0xff, 0xd8, 0xff]) },
  { name: 'a GIF image', test: (b) => ascii(b, 0, 4) === 'GIF8' },
  { name: 'a WebP image', test: (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP' },
  { name: 'a gzip archive', test: (b) => startsWith(b, [0x1f, 0x8b]) },
  { name: 'a legacy Word/Office (OLE) file; save it as DOCX', test: (b) => startsWith(b, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) },
  { name: 'an MP3 audio file', test: (b) => ascii(b, 0, 3) === 'ID3' },
  { name: 'an MP4 video or audio file', test: (b) => ascii(b, 4, 8) === 'ftyp' },
];

/**
 * A PDF starts with its header. pdf.js also accepts one after up to a KB of junk, so that is read as
 * a PDF too when nothing else was declared — not when text merely mentions "%PDF-" near its start.
 */
function isPdf(bytes: Uint8Array, wanted: DocumentFormat | undefined): boolean {
  const head = ascii(bytes, 0, 1024);
  if (/^\s*%PDF-/.test(head)) return true;
  return (wanted === undefined || wanted === 'PDF' || wanted === 'DOCX') && head.includes('%PDF-');
}

/**
 * Every binary format named below has control bytes (NUL and the like) or bytes that are no UTF-8 in
 * its first bytes; text that merely begins with the same letters has neither.
 */
function looksBinary(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 64);
  if (head.some(isControlByte)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return false;
  } catch {
    return true;
  }
}

function zipKind(bytes: Uint8Array): 'docx' | 'other' | undefined {
  if (!startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return undefined;
  // Entry names are stored uncompressed in the local headers and the central directory.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).includes('word/document.xml') ? 'docx' : 'other';
}

/**
 * A page's first tag after any whitespace and comments. Comments are skipped by a linear scan: a
 * regex repeating a lazy comment group backtracks exponentially on "<!---->" repeated.
 */
function looksLikeHtml(head: string): boolean {
  let at = 0;
  for (;;) {
    while (at < head.length && /\s/.test(head[at]!)) at++;
    if (!head.startsWith('<!--', at)) break;
    const close = head.indexOf('-->', at + 4);
    if (close < 0) return false;
    at = close + 3;
  }
  return /^(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])/i.test(head.slice(at, at + 256));
}

function looksLikeJson(head: string): boolean {
  return /^\s*[[{]/.test(head);
}

const FROM_MEDIA_TYPE: [RegExp, DocumentFormat][] = [
  [/^application\/pdf/, 'PDF'],
  [/^application\/vnd\.openxmlformats-officedocument\.wordprocessingml/, 'DOCX'],
  [/^(text\/html|application\/xhtml\+xml)/, 'HTML'],
  [/^(application|text)\/([\w.+-]+\+)?json/, 'JSON'],
  [/^text\/(csv|tab-separated-values)/, 'CSV'],
  [/^text\/(markdown|x-markdown)/, 'MARKDOWN'],
  [/^text\//, 'TXT'],
];

/**
 * Decides how to parse content from its bytes, not only from what the caller declared: a "PDF" that
 * is a DOCX is read as DOCX, a "PDF" that is text is read as text, an image is refused by name. For
 * URL sources the declared format comes from the response's Content-Type.
 */
export function detectFormat(bytes: Uint8Array, declared: Format, contentType?: string): Detection {
  if (declared === 'CONVERSATION') return { format: 'CONVERSATION' };
  const wanted = declared === 'URL' ? formatOfMediaType(contentType) : declared;
  const differs = (format: DocumentFormat, what: string): Detection =>
    format === wanted ? { format } : { format, note: `declared ${declared === 'URL' ? contentType ?? 'unknown type' : declared} but the content is ${what}` };

  if (isPdf(bytes, wanted)) return differs('PDF', 'a PDF');
  const zip = zipKind(bytes);
  if (zip === 'docx') return differs('DOCX', 'a DOCX document');
  if (zip === 'other') throw unsupportedMediaType(`the content is a ZIP archive, not a ${wanted ?? 'supported'} document`);
  // A text that begins like a binary signature ("GIF89a is…", a CSV header "ID3,name") is still text.
  const binary = looksBinary(bytes) ? KNOWN_BINARIES.find((kind) => kind.test(bytes)) : undefined;
  if (binary) throw unsupportedMediaType(`the content is ${binary.name}, which Cairn cannot ingest as ${wanted ?? 'text'}`);

  // Text from here on. A binary format declared for text content is read as the text it is.
  const head = ascii(bytes, 0, 2048);
  if (wanted === 'PDF' || wanted === 'DOCX') {
    return differs(looksLikeHtml(head) ? 'HTML' : 'TXT', looksLikeHtml(head) ? 'HTML' : 'plain text');
  }
  // Plain text that is really a page (a saved .html sent as TXT, a page served as text/plain): read as
  // HTML, so its scripts and navigation are not indexed as text.
  if (wanted === 'TXT' && looksLikeHtml(head)) return differs('HTML', 'HTML');
  if (wanted) return { format: wanted };
  // A URL with no useful Content-Type: sniff.
  if (looksLikeHtml(head)) return { format: 'HTML' };
  if (looksLikeJson(head)) return { format: 'JSON' };
  if (contentType && !/^(application\/octet-stream|binary\/)/.test(contentType)) {
    throw unsupportedMediaType(`the URL returned ${contentType}, which Cairn cannot ingest`);
  }
  return { format: 'TXT' };
}

function formatOfMediaType(contentType?: string): DocumentFormat | undefined {
  const type = contentType?.toLowerCase().trim();
  if (!type) return undefined;
  return FROM_MEDIA_TYPE.find(([pattern]) => pattern.test(type))?.[1];
}
