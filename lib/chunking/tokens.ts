import { get_encoding, type Tiktoken } from 'tiktoken';

let encoder: Tiktoken | undefined;

/** cl100k_base: the tokenizer of OpenAI's embedding and chat models, so budgets match what they bill. */
function encoding(): Tiktoken {
  encoder ??= get_encoding('cl100k_base');
  return encoder;
}

/**
 * Text goes to the encoder a piece at a time: tiktoken's byte-pair merge is quadratic in the length
 * of one pre-token, so a long run of spaces or letters with no break (200 KB of spaces: 20 s; 1 MB:
 * the WASM module panics) would stall the worker. Pieces end just before a space that follows a word
 * where one is near — where the encoder would split anyway, so counts stay exact for ordinary text —
 * and are otherwise cut at PIECE characters (never inside a surrogate pair).
 */
const PIECE = 512;

function pieces(text: string): string[] {
  if (text.length <= PIECE) return [text];
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + PIECE);
    if (end < text.length) {
      let cut = end;
      while (cut > start + PIECE / 2 && !(text[cut] === ' ' && /\S/.test(text[cut - 1]!))) cut--;
      end = cut > start + PIECE / 2 ? cut : end;
      const code = text.charCodeAt(end - 1);
      if (code >= 0xd800 && code <= 0xdbff) end--;
    }
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

function encode(text: string): number[] {
  const tokens: number[] = [];
  for (const piece of pieces(text)) for (const token of encoding().encode_ordinary(piece)) tokens.push(token);
  return tokens;
}

export function countTokens(text: string): number {
  if (!text) return 0;
  let count = 0;
  for (const piece of pieces(text)) count += encoding().encode_ordinary(piece).length;
  return count;
}

export interface Span {
  start: number;
  end: number;
}

/**
 * Character spans of at most maxTokens tokens each, cut at token boundaries (for a sentence longer
 * than a chunk). Spans index the original string, so provenance offsets stay exact even when a cut
 * falls inside a multi-byte character (the cut moves to the next character boundary).
 */
export function tokenSpans(text: string, maxTokens: number): Span[] {
  const tokens = encode(text);
  if (tokens.length <= maxTokens) return [{ start: 0, end: text.length }];
  const bytes = Buffer.from(text, 'utf8');
  const spans: Span[] = [];
  let byteOffset = 0;
  let charOffset = 0;
  for (let from = 0; from < tokens.length; from += maxTokens) {
    let byteEnd = byteOffset;
    for (const token of tokens.slice(from, from + maxTokens)) byteEnd += encoding().decode_single_token_bytes(token).length;
    while (byteEnd < bytes.length && (bytes[byteEnd]! & 0xc0) === 0x80) byteEnd++;
    const charEnd = charOffset + bytes.subarray(byteOffset, byteEnd).toString('utf8').length;
    if (charEnd > charOffset) spans.push({ start: charOffset, end: charEnd });
    byteOffset = byteEnd;
    charOffset = charEnd;
  }
  return withinBudget(text, spans, maxTokens);
}

/**
 * A cut inside a multi-byte character moves to the character's end, and the character then encodes
 * as more tokens than the window counted (an emoji cut after its first byte): such a span gives back
 * characters from its end, one at a time, to the next span, until it fits.
 */
function withinBudget(text: string, spans: Span[], maxTokens: number): Span[] {
  const fitted: Span[] = [];
  let start = 0;
  for (let i = 0; i < spans.length && start < text.length; i++) {
    let end = Math.max(spans[i]!.end, start + 1);
    while (countTokens(text.slice(start, end)) > maxTokens) {
      const back = end - 2 > start && /[\udc00-\udfff]/.test(text[end - 1]!) ? 2 : 1;
      if (end - back <= start) break;
      end -= back;
    }
    fitted.push({ start, end });
    start = end;
    // What the last span gave back becomes one more.
    if (i === spans.length - 1 && end < text.length) spans = [...spans, { start: end, end: text.length }];
  }
  return fitted;
}

/** Splits text into pieces of at most maxTokens tokens, at token boundaries. */
export function splitByTokens(text: string, maxTokens: number): string[] {
  return tokenSpans(text, maxTokens).map(({ start, end }) => text.slice(start, end));
}
