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
 * Character spans of at most maxTokens tokens each (as each encodes on its own), cut at token
 * boundaries moved back to character boundaries (for a sentence longer than a chunk): no character is
 * cut in half, and spans index the original string, so provenance offsets stay exact.
 */
export function tokenSpans(text: string, maxTokens: number): Span[] {
  const tokens = encode(text);
  if (tokens.length <= maxTokens) return [{ start: 0, end: text.length }];
  const bytes = Buffer.from(text, 'utf8');
  // Where each token starts, in bytes.
  const starts = new Array<number>(tokens.length + 1);
  let offset = 0;
  tokens.forEach((token, i) => {
    starts[i] = offset;
    offset += encoding().decode_single_token_bytes(token).length;
  });
  starts[tokens.length] = offset;
  const isContinuation = (at: number) => at < bytes.length && (bytes[at]! & 0xc0) === 0x80;

  // Each window starts where the last one ended (a character boundary) and takes up to maxTokens of
  // the tokens after it, cut back to a character boundary; a window that encodes to more than
  // maxTokens on its own (its cut fell inside a character, or its start inside a token) takes one
  // token fewer. One count per window: linear in the text.
  const spans: Span[] = [];
  let byteStart = 0;
  let charStart = 0;
  let t = 0;
  while (byteStart < bytes.length) {
    while (t < tokens.length && starts[t]! < byteStart) t++;
    let byteEnd = byteStart;
    for (let take = maxTokens; ; take--) {
      byteEnd = starts[Math.min(tokens.length, t + take)]!;
      while (byteEnd > byteStart && isContinuation(byteEnd)) byteEnd--;
      if (byteEnd <= byteStart) {
        // Not one whole character fits the count: take one character (it is never split).
        byteEnd = byteStart + 1;
        while (isContinuation(byteEnd)) byteEnd++;
        break;
      }
      if (take <= 1 || countTokens(bytes.subarray(byteStart, byteEnd).toString('utf8')) <= maxTokens) break;
    }
    const charEnd = charStart + bytes.subarray(byteStart, byteEnd).toString('utf8').length;
    spans.push({ start: charStart, end: charEnd });
    byteStart = byteEnd;
    charStart = charEnd;
  }
  return spans;
}

/** Splits text into pieces of at most maxTokens tokens, at token boundaries. */
export function splitByTokens(text: string, maxTokens: number): string[] {
  return tokenSpans(text, maxTokens).map(({ start, end }) => text.slice(start, end));
}
