/** Character sets as HTTP declares them: read by the API for JSON bodies and by the text parser for uploads. */
import chardet from 'chardet';
import iconv from 'iconv-lite';

/** The `charset` parameter of a Content-Type, if any. */
export const charsetOf = (contentType: string | undefined) => /;\s*charset\s*=\s*"?([\w.:-]+)"?/i.exec(contentType ?? '')?.[1];

/** An encoding TextDecoder knows, by the label given; undefined for none or an unknown label. */
export function supported(label: string | undefined): string | undefined {
  if (!label) return undefined;
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return undefined;
  }
}

/**
 * Bytes in `encoding` (a name `supported` answered) as text. UTF-8 and UTF-16 go through TextDecoder;
 * every other encoding through iconv-lite, because Node's TextDecoder has read windows-1252 as Latin-1
 * since 20.18.3 (nodejs/node#56542): its 0x80–0x9F, “ ” ‘ ’ – — € …, came out as C1 control characters.
 */
export function decodeAs(encoding: string, bytes: Uint8Array): string {
  if (/^utf-(8|16)/i.test(encoding) || !iconv.encodingExists(encoding)) return new TextDecoder(encoding).decode(bytes);
  return iconv.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), encoding);
}

/**
 * The encoding of text that is not valid UTF-8 and declares none (an upload: multer keeps a file
 * part's type but drops its charset), as chardet reads the bytes' statistics: a legacy encoding it is
 * fairly sure of (windows-1251, KOI8-R, Shift_JIS, GB18030, EUC-KR, …). Undefined when
 * unsure (short text), for the caller's fallback.
 */
export function detectLegacyEncoding(bytes: Uint8Array): string | undefined {
  // The first 64 KB tell as well as the whole (up to 20 MB) would.
  // Sure enough: a multi-byte encoding's valid sequences score 90–100; a single-byte encoding of a
  // sentence or two scores 40–60, which is taken when it is twice the next guess or more.
  const [best, next] = chardet.analyse(bytes.subarray(0, 64 * 1024));
  if (!best || /^(UTF-8|ASCII)$/i.test(best.name)) return undefined;
  if (best.confidence < 90 && (best.confidence < 25 || (next && best.confidence < 2 * next.confidence))) return undefined;
  // ISO-8859-1 text is windows-1252 text: the same letters, and 0x80–0x9F are punctuation, not controls.
  const name = /^ISO-8859-1$/i.test(best.name) ? 'windows-1252' : best.name;
  return iconv.encodingExists(name) ? name : undefined;
}

/** UTF-16 without a byte-order mark, told by its NULs: mostly-ASCII text has one in every other byte. */
export function bomlessUtf16(bytes: Uint8Array): 'utf-16le' | 'utf-16be' | undefined {
  const pairs = Math.min(bytes.length >> 1, 4096);
  // Most text has no NUL at all: a native scan says so before any counting.
  if (pairs < 4 || !bytes.subarray(0, 2 * pairs).includes(0)) return undefined;
  let evenNuls = 0;
  let oddNuls = 0;
  let evenControls = 0;
  let oddControls = 0;
  for (let i = 0; i < pairs; i++) {
    const [even, odd] = [bytes[2 * i]!, bytes[2 * i + 1]!];
    if (even === 0) evenNuls++;
    if (odd === 0) oddNuls++;
    // A code unit U+0001–U+001F (its high byte 0), not U+2019 and its like, whose low byte is 0x19.
    if (odd === 0 && isControlByte(even)) evenControls++;
    if (even === 0 && isControlByte(odd)) oddControls++;
  }
  // …and whose code units are letters, not the control characters of binary data (16-bit samples, say).
  if (oddNuls > pairs * 0.3 && evenNuls < pairs * 0.02 && evenControls < pairs * 0.01) return 'utf-16le';
  if (evenNuls > pairs * 0.3 && oddNuls < pairs * 0.02 && oddControls < pairs * 0.01) return 'utf-16be';
  return undefined;
}

/** A byte no text encoding uses for text: a C0 control other than tab, newlines, form feed and escape. */
export const isControlByte = (byte: number) => byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d && byte !== 0x1b;
