/**
 * The full stops of scripts that need no space after them to end a sentence: Chinese and Japanese
 * 。！？｡ (no space follows), Devanagari's danda । ॥, Arabic's ؟ and Urdu's ۔. Closing quotes and
 * brackets after one stay with its sentence.
 */
export const FULL_STOP = '[。！？｡।॥؟۔][」』）〕”’"\')\\]]*(?![」』）〕”’"\')\\]])';

/**
 * Where a sentence ends: after . ! or ? and the space that follows, after a full stop of the scripts
 * above (and any space), or at a line break (a chat turn, a list item).
 */
const SENTENCE_BREAK = new RegExp(`(?<=[.!?])\\s+|(?<=${FULL_STOP})\\s*|\\n+`, 'g');

/** The character ranges of a text's sentences, in order (ranges hold no surrounding break). */
export function sentenceSpans(text: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let start = 0;
  for (const found of text.matchAll(SENTENCE_BREAK)) {
    spans.push({ start, end: found.index! });
    start = found.index! + found[0].length;
  }
  spans.push({ start, end: text.length });
  return spans;
}

/** A text's sentences, trimmed, empty ones left out. */
export const sentences = (text: string): string[] =>
  sentenceSpans(text)
    .map(({ start, end }) => text.slice(start, end).trim())
    .filter(Boolean);
