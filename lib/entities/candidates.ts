import type { estypes } from '@elastic/elasticsearch';
import type { EntityDoc, NormalisedMention } from './entity';
import { MIN_PREFIX, lookupKeys, namesCompatible, shareWord, typesCompatible } from './names';

/** Cosine above which two differently written names of one type that share a word are one entity. */
const SIMILAR_NAMES = 0.9;

/** An entity that might be the one a mention means, with its name's cosine similarity when known. */
export interface Candidate {
  doc: EntityDoc;
  score?: number;
}

/**
 * The tenant's entities a mention could join by name: stored under one of its lookup keys (as name or
 * alias), or starting with its first word ("mel" finds "melanie").
 */
export function nameQuery(tenant: string, normalised: string): estypes.QueryDslQueryContainer {
  const keys = lookupKeys(normalised);
  const first = firstWord(normalised);
  const prefixes: estypes.QueryDslQueryContainer[] =
    first.length >= MIN_PREFIX ? [{ prefix: { normalized_name: first } }, { prefix: { normalized_aliases: first } }] : [];
  return {
    bool: {
      filter: [{ term: { tenant } }],
      should: [{ terms: { normalized_name: keys } }, { terms: { normalized_aliases: keys } }, ...prefixes],
      minimum_should_match: 1,
    },
  };
}

/**
 * nameQuery evaluated in memory, for entities this batch created or changed: Elasticsearch cannot see
 * them yet (they are written together at the end of the batch).
 */
export function matchesNameQuery(doc: EntityDoc, normalised: string): boolean {
  const keys = new Set(lookupKeys(normalised));
  const names = [doc.normalized_name, ...(doc.normalized_aliases ?? [])];
  if (names.some((name) => keys.has(name))) return true;
  const first = firstWord(normalised);
  return first.length >= MIN_PREFIX && names.some((name) => name.startsWith(first));
}

/**
 * The one existing entity a new surface form belongs to, if exactly one fits: an entity that already
 * has the form as an alias wins; otherwise one whose name is compatible ("Mel" → "Melanie") or embeds
 * almost identically and shares a word. Two fits ("Bob" with "Bob Smith" and "Bob Jones") answer
 * nothing: guessing would merge people wrongly.
 */
export function chooseEntity(candidates: Iterable<Candidate>, mention: NormalisedMention): string | undefined {
  const fits = [...candidates].filter(({ doc, score }) => {
    if (!typesCompatible(doc.type, mention.type)) return false;
    if (doc.normalized_name === mention.normalised || hasAlias(doc, mention.normalised)) return true;
    // Against the entity's own (fullest) name, not its short aliases: "Melissa" is no "Mel" → "Melanie".
    if (namesCompatible(doc.normalized_name, mention.normalised)) return true;
    return (score ?? 0) >= SIMILAR_NAMES && shareWord(doc.normalized_name, mention.normalised);
  });
  const exactAlias = fits.filter(({ doc }) => hasAlias(doc, mention.normalised));
  const chosen = exactAlias.length === 1 ? exactAlias : fits;
  return chosen.length === 1 ? chosen[0]!.doc.id : undefined;
}

/**
 * Whether the name lookup alone settles the mention (exactly one type-compatible entity has it as an
 * alias): then chooseEntity answers that entity whatever similar names add, so no vector is needed.
 */
export function settledByAlias(candidates: Iterable<Candidate>, mention: NormalisedMention): boolean {
  const aliases = [...candidates].filter(({ doc }) => typesCompatible(doc.type, mention.type) && hasAlias(doc, mention.normalised));
  return aliases.length === 1;
}

const hasAlias = (doc: EntityDoc, normalised: string) => doc.normalized_aliases?.includes(normalised) ?? false;
const firstWord = (normalised: string) => normalised.split(' ')[0] ?? '';
