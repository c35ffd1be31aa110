import nlp from 'compromise';
import { withoutAccents } from '../text/accents';

/**
 * Which sentences of a text could hold a name, so the entity tagger reads only those. Most sentences
 * of a chat or a note hold none ("That sounds great! I love painting too."), and compromise costs the
 * same for them as for any other. A sentence may hold a name when one of its words could start one,
 * going by compromise's own data:
 * - a word its lexicon tags as a name, place, organisation, honorific, proper noun or acronym
 *   ("lisbon", "dr", "inc"), or a multi-word entry so tagged that the sentence contains ("the beatles");
 * - a word its context rules may turn into one (switches such as "may" and "will", its organisation
 *   and place words such as "university" and "street");
 * - a capitalised word the lexicon does not know ("Zorblax", "GitHub"), or one in capitals ("US");
 * - an ampersand or an "n" between words ("me & my", "Johnson & Johnson", "smith n sons").
 * A capitalised word the lexicon knows as something else ("The", "Near", "March", "I") is not a
 * reason. On the texts compared (test/entity-tagger.test.ts, and ~5,500 while building this: LoCoMo's
 * chats, the ingest bench's notes, READMEs and API docs, also lower- and upper-cased) the names
 * found are the same as from the whole text.
 */
interface World {
  model: {
    one: { lexicon: Record<string, string | string[]> };
    two: { switches: Record<string, string>; orgWords: Record<string, unknown>; placeWords: Record<string, unknown> };
  };
  methods: { one: { tokenize: { splitSentences(text: string, world: World): string[] } } };
}

interface Clues {
  world: World;
  /** Single words that may start a name. */
  words: Set<string>;
  /** Multi-word name entries, by their first word. */
  phrases: Map<string, string[]>;
}

const NAME_TAGS = /Person|FirstName|LastName|MaleName|FemaleName|Honorific|Place|Country|City|Region|Address|Organization|SportsTeam|Company|School|ProperNoun|Acronym/;
const WORD = /[\p{L}\p{N}'’&.-]+/gu;
const PIECES = /[.'’-]+/;
const CAPITALS = /^\p{Lu}{2,}$/u;

let clues: Clues | undefined;

/** Lower case without accents, as compromise's normal form reads "João" (joao). */
const plainLower = (word: string) => withoutAccents(word.toLowerCase());

function build(): Clues {
  const world = nlp.world() as World;
  const words = new Set<string>();
  const phrases = new Map<string, string[]>();
  for (const [entry, tags] of Object.entries(world.model.one.lexicon)) {
    if (!NAME_TAGS.test(Array.isArray(tags) ? tags.join() : tags)) continue;
    const space = entry.indexOf(' ');
    if (space < 0) words.add(entry);
    else phrases.set(entry.slice(0, space), [...(phrases.get(entry.slice(0, space)) ?? []), entry]);
  }
  for (const [word, tags] of Object.entries(world.model.two.switches)) if (NAME_TAGS.test(tags)) words.add(word);
  for (const word of Object.keys(world.model.two.orgWords)) words.add(word);
  for (const word of Object.keys(world.model.two.placeWords)) words.add(word);
  // Its organisation rules read "n" as "&" ("Rock n Roll Hall").
  words.add('n');
  return { world, words, phrases };
}

/** The sentences of the text, as compromise splits them, that may hold a name; joined, in order. */
export function sentencesThatMayName(text: string): string {
  clues ??= build();
  const sentences = clues.world.methods.one.tokenize.splitSentences(text, clues.world);
  const kept = sentences.filter((sentence) => mayHoldName(sentence, clues!));
  return kept.length === sentences.length ? text : kept.join('');
}

function mayHoldName(sentence: string, { world, words, phrases }: Clues): boolean {
  if (sentence.includes('&')) return true;
  const known = (piece: string) => world.model.one.lexicon[piece.toLowerCase()] !== undefined || world.model.one.lexicon[plainLower(piece)] !== undefined;
  // The sentence lower-cased, with and without accents, for multi-word entries: made only when a word
  // begins one (most sentences have none).
  let haystacks: string[] | undefined;
  const contains = (phrase: string) => (haystacks ??= [sentence.toLowerCase(), plainLower(sentence)]).some((text) => text.includes(phrase));
  for (const [word] of sentence.matchAll(WORD)) {
    const lower = word.toLowerCase();
    if (lower !== word && (CAPITALS.test(word) || word.split(PIECES).some((piece) => piece !== piece.toLowerCase() && !known(piece)))) return true;
    const plain = plainLower(word);
    for (const piece of new Set([lower, plain, ...lower.split(PIECES), ...plain.split(PIECES)])) {
      if (words.has(piece)) return true;
      if (phrases.get(piece)?.some(contains)) return true;
    }
  }
  return false;
}
