/**
 * Elasticsearch refuses a search of more than its clause limit (8,192 on the bundled server, less on a
 * small heap), and a match query is one clause per distinct term per field. Its `standard` analyzer makes
 * every Han ideograph and Hiragana character a term of its own, so a Chinese query well inside the
 * 10,000-character limit (3,000 distinct ideographs, 3 fields) is over it. Past this many terms, a
 * field's query text is cut to its first distinct terms: 5 fields of it stay far below any limit.
 */
export const MAX_QUERY_TERMS = 1024;

/**
 * The terms the `standard` analyzer would make, never fewer: one per ideograph, Hiragana character or
 * emoji, else one per run of letters, digits and marks (it may keep "don't" or "3.14" as one; counting
 * them as two only cuts a query sooner).
 */
const TERM = /[\p{sc=Han}\p{sc=Hiragana}\p{Extended_Pictographic}]|(?:(?![\p{sc=Han}\p{sc=Hiragana}])[\p{L}\p{N}\p{M}])+/gu;

/** The text as sent to a match query: as written, or, with more than MAX_QUERY_TERMS terms, its first distinct ones. */
export function withinClauseBudget(text: string): string {
  const terms = text.match(TERM) ?? [];
  if (terms.length <= MAX_QUERY_TERMS) return text;
  return [...new Set(terms.map((term) => term.toLowerCase()))].slice(0, MAX_QUERY_TERMS).join(' ');
}
