/**
 * Marks a writer may put in or leave out without changing the word, so text is compared without them:
 * Latin accents ("João" / "Joao"), Arabic harakat, superscript alef and tatweel (as Elasticsearch's
 * arabic_normalization drops them), Hebrew points and cantillation. Indic vowel signs and viramas, and
 * Japanese voicing marks, are not among them: they change the letter ("सीता" Sita is not "सेतु" Setu).
 */
const OPTIONAL_MARKS = /[\u0300-\u036f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0640\u064b-\u065f\u0670]/g;

/** The text with its optional marks dropped ("João" → "Joao", "مُحَمَّد" → "محمد"): compatibility forms decomposed first. */
export const withoutAccents = (text: string): string => text.normalize('NFKD').replace(OPTIONAL_MARKS, '');

/**
 * Invisible format characters (soft hyphen, zero-width joiners, word joiner, BOM, bidi marks): a word
 * with one inside is the same word ("Donau\u00addampf\u00adschiff" from a hyphenated web page). The
 * zero-width space is left in: in Thai or Khmer it is the only mark between two words.
 */
const INVISIBLE = /[^\P{Cf}\u200b]/u;
const INVISIBLE_ALL = /[^\P{Cf}\u200b]/gu;
const NOT_ASCII = /[^\x00-\x7f]/;

/** The form texts and names are compared in: no invisible format characters, no optional marks. */
export function comparableForm(text: string): string {
  // Plain ASCII, most English text, has nothing to drop or decompose.
  if (!NOT_ASCII.test(text)) return text;
  return withoutAccents(INVISIBLE.test(text) ? text.replace(INVISIBLE_ALL, '') : text);
}
