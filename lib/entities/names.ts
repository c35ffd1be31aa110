import { comparableForm } from '../text/accents';

/**
 * How entity names compare. Names are compared in a normalised form (accents, possessives, punctuation
 * and case dropped), so "Caroline's" and "caroline" are one name before any lookup happens. Combining
 * marks that are letters of the name (Indic vowel signs) stay; optional ones (accents, Arabic harakat,
 * Hebrew points) go, so "مُحَمَّد" and "محمد" are one name and "सीता" and "सेतु" are two.
 */

export function normaliseEntityName(name: string): string {
  return comparableForm(name)
    .replace(/['’]s\b/g, '')
    .replace(/[^\p{L}\p{N}\p{M}]+/gu, ' ')
    .trim()
    .toLowerCase();
}

const tokens = (normalised: string) => normalised.split(' ').filter(Boolean);

/** Shortest nickname taken as a shortened first name: "Mel" → "Melanie", but never "Al" → "Alice". */
export const MIN_PREFIX = 3;

/**
 * Whether two normalised names can denote the same entity: one is a shortened form of the other
 * ("mel" / "melanie", "caro" / "caroline"; not "dan" / "dana"), or the shorter one's words all occur in the longer one
 * ("bob" / "bob smith", "new york" / "new york city"). "bob smith" / "bob jones" are not compatible:
 * each has a word the other lacks.
 */
export function namesCompatible(a: string, b: string): boolean {
  if (a === b) return true;
  const [x, y] = [tokens(a), tokens(b)];
  const aShorter = x.length < y.length || (x.length === y.length && a.length <= b.length);
  const [short, long] = aShorter ? [x, y] : [y, x];
  if (short.length === 0) return false;
  if (short.every((word) => long.includes(word))) return true;
  const [first] = short;
  // A short form leaves off at least two letters ("mel" / "melanie", "dan" / "daniel"): a name one
  // letter longer is another name ("dan" / "dana", "ann" / "anna").
  return short.length === 1 && first!.length >= MIN_PREFIX && long[0]!.startsWith(first!) && long[0]!.length - first!.length >= 2;
}

/** Whether `candidate` is the fuller form of `current`, so it should become the display name. */
export function isFullerName(candidate: string, current: string): boolean {
  return candidate !== current && namesCompatible(candidate, current) && candidate.length > current.length;
}

/**
 * Normalised names an existing compatible entity could be stored under: every run of consecutive words
 * ("new york" inside "new york city") and every prefix of the first word (an entity named "mel" is a
 * shortened form of a mention "melanie").
 */
export function lookupKeys(normalised: string): string[] {
  const words = tokens(normalised).slice(0, 8);
  const keys = new Set<string>();
  for (let start = 0; start < words.length; start++) {
    for (let end = start + 1; end <= words.length; end++) keys.add(words.slice(start, end).join(' '));
  }
  const first = words[0] ?? '';
  for (let end = MIN_PREFIX; end < first.length; end++) keys.add(first.slice(0, end));
  return [...keys];
}

/** Whether two normalised names share at least one word. */
export function shareWord(a: string, b: string): boolean {
  const other = new Set(tokens(b));
  return tokens(a).some((word) => other.has(word));
}

/** Types that say nothing specific are compatible with any type. */
const GENERIC_TYPES = new Set(['thing', 'other', 'unknown', 'entity', '']);

export const isGenericType = (type: string) => GENERIC_TYPES.has(type);

export function typesCompatible(a: string, b: string): boolean {
  return a === b || isGenericType(a) || isGenericType(b);
}
