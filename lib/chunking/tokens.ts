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

/** Splits text into pieces of at most maxTokens tokens, at token boundaries (for overlong sentences). */
export function splitByTokens(text: string, maxTokens: number): string[] {
  const tokens = encoding().encode_ordinary(text);
  if (tokens.length <= maxTokens) return [text];
  const decoder = new TextDecoder();
  const pieces: string[] = [];
  for (let start = 0; start < tokens.length; start += maxTokens) {
    pieces.push(decoder.decode(encoding().decode(tokens.slice(start, start + maxTokens))));
  }
  return pieces;
}
