import { get_encoding, type Tiktoken } from 'tiktoken';

let encoder: Tiktoken | undefined;

/** cl100k_base: the tokenizer of OpenAI's embedding and chat models, so budgets match what they bill. */
function encoding(): Tiktoken {
  encoder ??= get_encoding('cl100k_base');
  return encoder;
}

export function countTokens(text: string): number {
  if (!text) return 0;
  return encoding().encode_ordinary(text).length;
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
  const tokens = encoding().encode_ordinary(text);
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
  return spans;
}

/** Splits text into pieces of at most maxTokens tokens, at token boundaries. */
export function splitByTokens(text: string, maxTokens: number): string[] {
  return tokenSpans(text, maxTokens).map(({ start, end }) => text.slice(start, end));
}
