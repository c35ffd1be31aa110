import stem from 'wink-porter2-stemmer';
import { comparableForm } from '../text/accents';

/**
 * Client-side text analysis. The Elasticsearch Cairn targets may run without the analysis-common module
 * (no stemmer, no stop filter, no english analyzer), so the words are stemmed here and indexed as
 * space-separated stems, which the always-present `standard` analyzer splits back apart. Queries go
 * through the same function, so "hiking" finds "hiked" and "adoption" finds "adopted".
 */

/**
 * Function words and the words questions are made of: they carry no topic, and in a conversation they
 * occur in nearly every turn, so matching them only adds noise to the ranking.
 */
const STOP_WORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by ' +
    'can could did do does doing down during each few for from further had has have having he her here hers herself him ' +
    'himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other ' +
    'our ours ourselves out over own same she should so some such than that the their theirs them themselves then there ' +
    'these they this those through to too under until up very was we were what when where which while who whom why will ' +
    'with would you your yours yourself yourselves ' +
    // Contractions, once tokenize has dropped their apostrophes, and question scaffolding ("what kind of").
    'cant im ive youre youve dont didnt doesnt isnt wasnt werent havent hasnt hadnt wouldnt couldnt shouldnt thats whats ' +
    'also ever kind sort type thing things likely would might must shall may yes yeah oh ok okay really'
  ).split(/\s+/),
);

/**
 * A word: a letter or digit, then letters, digits and combining marks (a Hindi vowel sign belongs to its
 * word), possibly joined to more of them by apostrophes ("don't", "l'hôpital", "İstanbul'da") or
 * zero-width spaces (a word break the writer hid: "pass\u200bword", or between two Thai words).
 */
const WORD = /[\p{L}\p{N}][\p{L}\p{N}\p{M}'’\u200b]*/gu;
const JOINER = /['’\u200b]/;
const JOINERS = /['’\u200b]+/;
const POSSESSIVE = /['’]s\b/g;

/** What an English contraction ends with ("don't", "I'm", "we'll"): such a word is indexed only glued ("dont"). */
const ENGLISH_CLITICS = new Set(['t', 'm', 'd', 'll', 're', 've']);

/**
 * Lower-cased word tokens, with possessive 's dropped. A word with an inner apostrophe is indexed glued
 * ("dont", "lhopital", as it always was) and, unless it is an English contraction, also as its parts of
 * two letters or more: an elided article or a suffix is written onto the word it belongs to in French,
 * Italian or Turkish, and "hôpital" should find "l'hôpital", "Ankara" find "Ankara'ya".
 */
export function tokenize(text: string): string[] {
  const folded = comparableForm(text).toLowerCase().replace(POSSESSIVE, '');
  const words = folded.match(WORD) ?? [];
  if (!JOINER.test(folded)) return words;
  const tokens: string[] = [];
  for (const word of words) {
    if (JOINER.test(word)) tokens.push(...withParts(word));
    else tokens.push(word);
  }
  return tokens;
}

function withParts(word: string): string[] {
  const parts = word.split(JOINERS).filter(Boolean);
  const glued = parts.join('');
  if (parts.length === 1 || ENGLISH_CLITICS.has(parts[parts.length - 1]!)) return [glued];
  return [glued, ...parts.filter((part) => part.length > 1)];
}

/**
 * Stems already worked out. A text's words are mostly words seen before (LoCoMo's 788 turns: 18,376
 * words, 1,890 distinct), and the stemmer was most of this file's time: 400 bench:ingest chunks are
 * stemmed in ~20 ms instead of ~90. Emptied when full, so a stream of new words cannot grow it
 * without bound.
 */
const stems = new Map<string, string>();
const STEMS_KEPT = 50_000;

function stemOf(token: string): string {
  let stemmed = stems.get(token);
  if (stemmed === undefined) {
    stemmed = /^\p{L}+$/u.test(token) ? stem(token) : token;
    if (stems.size >= STEMS_KEPT) stems.clear();
    stems.set(token, stemmed);
  }
  return stemmed;
}

/** Topic words of a text, stemmed: stop words dropped, order kept (duplicates too, for term frequency). */
export function stemmedTerms(text: string): string[] {
  return tokenize(text)
    .filter((token) => !STOP_WORDS.has(token))
    .map(stemOf);
}

/** The indexed form of a text: its stemmed topic words joined by spaces (undefined when none remain). */
export function stemmedText(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const terms = stemmedTerms(text);
  return terms.length ? terms.join(' ') : undefined;
}
