import { z } from 'zod';
import { badInput } from './errors';
import { sentences } from './text/sentences';

// How an edit's content meets a memory's text (`PATCH /v1/memories/:id`, Synap's update): replaced,
// appended, or merged sentence by sentence.

export const MERGE_STRATEGIES = ['replace', 'append', 'smart-merge'] as const;
export const MergeStrategy = z.enum(MERGE_STRATEGIES);
export type MergeStrategy = z.infer<typeof MergeStrategy>;

// Words as Unicode segments them (ICU): Chinese, Japanese and Thai, written without spaces, by
// dictionary; a Devanagari word whole with its vowel signs (combining marks a letter class splits at).
const WORDS = new Intl.Segmenter(undefined, { granularity: 'word' });
const words = (text: string) => new Set([...WORDS.segment(text.toLowerCase())].filter((part) => part.isWordLike).map((part) => part.segment));

function overlap(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const word of a) if (b.has(word)) shared++;
  return shared / Math.min(a.size, b.size);
}

/**
 * Smart merge without a model: sentence by sentence, a new sentence that restates an old one (most of
 * the shorter one's words shared) replaces it — the newer version wins a conflict — and sentences
 * that say something new are added. Exact repeats collapse to one.
 */
export function smartMerge(existing: string, incoming: string): string {
  const fresh = sentences(incoming);
  const freshWords = fresh.map(words);
  // Only new sentences sharing a word with an old one can restate it: each old sentence is compared
  // with those, found through a word index, not with every new sentence.
  const byWord = new Map<string, number[]>();
  freshWords.forEach((set, i) =>
    set.forEach((word) => {
      const list = byWord.get(word);
      if (list) list.push(i);
      else byWord.set(word, [i]);
    }),
  );
  const kept = sentences(existing).filter((sentence) => {
    const own = words(sentence);
    const candidates = new Set([...own].flatMap((word) => byWord.get(word) ?? []));
    return ![...candidates].some((i) => overlap(own, freshWords[i]!) >= 0.6);
  });
  // Chinese and Japanese sentences follow one another with no space between them.
  return [...new Set([...kept, ...fresh])].reduce((text, sentence) => (!text ? sentence : /[。！？｡]$/.test(text) ? text + sentence : `${text} ${sentence}`), '');
}

/** The longest a memory's text may grow by updates: one memory is a statement, not a document. */
export const MAX_MEMORY_CHARS = 100_000;

/** Smart merge compares sentences pairwise: it takes memories up to this size (append or replace take any). */
export const MAX_SMART_MERGE_CHARS = 20_000;

export function mergeText(existing: string, incoming: string, strategy: MergeStrategy): string {
  let merged: string;
  if (strategy === 'replace') merged = incoming;
  // Appending what the text's last line already is is a repeat (a retried append), not more text.
  else if (strategy === 'append') merged = existing.split('\n').pop()!.trim() === incoming.trim() ? existing : `${existing}\n${incoming}`;
  else {
    if (existing.length + incoming.length > MAX_SMART_MERGE_CHARS) {
      throw badInput(`smart-merge takes a memory and content of up to ${MAX_SMART_MERGE_CHARS} characters together; use append or replace`);
    }
    merged = smartMerge(existing, incoming);
  }
  if (merged.length > MAX_MEMORY_CHARS) throw badInput(`the memory would hold ${merged.length} characters, over the ${MAX_MEMORY_CHARS} one memory may hold`);
  return merged;
}
