import nlp from 'compromise';

/**
 * compromise's tagger, trimmed to what finding names needs. Its full run spends two thirds of its
 * time in the post-tagger, ~570 context rules that refine every part of speech (verb tenses,
 * adverbs, fractions…), and a further tenth chunking phrases; entity extraction reads only the tags
 * people(), places() and organizations() match on. Here the post-tagger runs only the rules that read
 * or write a name, place, organisation, noun, date or value tag (about 320: the ones name tags
 * depend on), through a leaner bulk match (matchRules), and the chunker not at all. On ~6,600 texts
 * (LoCoMo chats, READMEs, the ingest bench's notes) the names found are identical to the full run's,
 * at about half its cost. It leans on compromise internals (its rule model, quickSplit, bulkTagger):
 * test/entity-tagger.test.ts holds the same comparison on a fixed sample, so a compromise upgrade
 * that breaks it fails there; compromise is pinned exactly for the same reason.
 */

interface Rule {
  match: string;
  tag?: string;
  unTag?: string;
  ifNo?: string | string[];
  notIf?: unknown;
}

/** One token of a parsed match pattern (the fields the first-term check reads). */
interface Reg {
  word?: string;
  tag?: string;
  fastOr?: Set<string>;
  pos?: string;
  use?: string;
  fuzzy?: boolean;
  id?: string;
  optional?: boolean;
  negative?: boolean;
  anything?: boolean;
  choices?: unknown;
  start?: boolean;
  end?: boolean;
}

/** A rule as buildNet leaves it: what the words of a sentence must include for it to be tried. */
interface NetRule extends Rule {
  regs: Reg[];
  needs: string[];
  wants: string[];
  minWant: number;
  minWords: number;
}

interface Net {
  hooks: Record<string, NetRule[]>;
  always: NetRule[];
}

interface Term {
  index: [number, number];
  text: string;
  normal: string;
  machine?: string | null;
  root?: string;
  implicit?: string;
  alias?: string[];
  tags: Set<string>;
}

interface Found {
  pointer: number[];
  unTag?: string;
}

interface World {
  model: { two: { matches: Rule[] } };
  methods: {
    one: {
      cacheDoc(document: Term[][]): Set<string>[];
      match(document: Term[][], rule: NetRule): { ptrs: number[][] };
      bulkTagger(found: Found[], document: Term[][], world: World): void;
    };
    two: { quickSplit(docs: Term[][]): Term[][] };
  };
}

type Doc = ReturnType<typeof nlp>;

/** Tags a name depends on: the names themselves, the nouns they head, and what competes with them ("May", "GB"). */
const NAME_RULES =
  /Person|FirstName|LastName|MaleName|FemaleName|Honorific|Place|Country|City|Region|Address|Organization|SportsTeam|Company|School|ProperNoun|Acronym|Noun|Unit|Value|Money|Date|Month|WeekDay|Time|Holiday/;

/** The tokenizer's own steps (nlp.tokenize runs them) and the two this tagger leaves out or runs itself. */
const NOT_RECOMPUTED = new Set(['alias', 'normal', 'machine', 'contractions', 'postTagger', 'chunks']);

interface Tagger {
  hooks: string[];
  net: Net;
  /** Hook keys in the net's order, which is the order compromise tries (and applies) rules in. */
  rank: Map<string, number>;
  /** Rules by match pattern: compromise tries a pattern once per part, under whichever hook finds it first. */
  patternOf: Map<NetRule, number>;
  patterns: number;
  /** For rules whose first token must match the match's first term: that test (see firstTermTest). */
  firstTerm: Map<NetRule, (term: Term) => boolean>;
  world: World;
}

let tagger: Tagger | undefined;

function build(): Tagger {
  const world = nlp.world() as World;
  // Copies: building a net parses rules in place, and compromise's own post-tagger builds from the
  // originals. A `notIf` compromise has already parsed must not be parsed twice: set aside, then restored.
  const rules = world.model.two.matches
    .filter((rule) => NAME_RULES.test(JSON.stringify([rule.tag, rule.unTag, rule.match, rule.ifNo])))
    .map((rule) => ({ ...rule }));
  const parsed = rules.map((rule) => (typeof rule.notIf === 'string' ? undefined : rule.notIf));
  rules.forEach((rule, i) => parsed[i] && (rule.notIf = undefined));
  const net = nlp.buildNet(rules as never) as unknown as Net;
  rules.forEach((rule, i) => parsed[i] && (rule.notIf = parsed[i]));
  const rank = new Map(Object.keys(net.hooks).map((key, i) => [key, i]));
  const ids = new Map<string, number>();
  const patternOf = new Map<NetRule, number>();
  for (const rule of Object.values(net.hooks).flat()) {
    if (!ids.has(rule.match)) ids.set(rule.match, ids.size);
    patternOf.set(rule, ids.get(rule.match)!);
  }
  const firstTerm = new Map<NetRule, (term: Term) => boolean>();
  for (const rule of [...Object.values(net.hooks).flat(), ...net.always]) {
    const test = firstTermTest(rule);
    if (test) firstTerm.set(rule, test);
  }
  return { hooks: nlp.hooks().filter((hook) => !NOT_RECOMPUTED.has(hook)), net, rank, patternOf, patterns: ids.size, firstTerm, world };
}

/** The text tokenized and tagged far enough for people(), places() and organizations(). */
export function tagNames(text: string): Doc {
  tagger ??= build();
  const doc = nlp.tokenize(text);
  doc.compute(tagger.hooks);
  // As compromise's post-tagger does: rules match within comma-separated parts of each sentence.
  const parts = tagger.world.methods.two.quickSplit((doc as unknown as { docs: Term[][] }).docs);
  tagger.world.methods.one.bulkTagger(matchRules(parts, tagger), parts, tagger.world);
  doc.uncache();
  (doc as unknown as { unfreeze(): void }).unfreeze();
  return doc;
}

/**
 * compromise's bulk match (src/1-one/sweep/methods/sweep), with one change: the rules worth trying on
 * a part are looked up from the part's own words and tags, not by testing each of the net's ~550
 * hooks against every part (half of the sweep's time on short comma-separated parts). Rules are tried,
 * and their results applied, in the same order as compromise's.
 */
function matchRules(parts: Term[][], { net, rank, patternOf, patterns, firstTerm, world }: Tagger): Found[] {
  const caches = world.methods.one.cacheDoc(parts);
  const found: Found[] = [];
  const triedIn = new Int32Array(patterns).fill(-1);
  parts.forEach((part, n) => {
    const have = caches[n]!;
    const keys = [...have].filter((key) => rank.has(key)).sort((a, b) => rank.get(a)! - rank.get(b)!);
    const rules: NetRule[] = [];
    for (const key of keys) {
      for (const rule of net.hooks[key]!) {
        const pattern = patternOf.get(rule)!;
        if (triedIn[pattern] === n) continue;
        triedIn[pattern] = n;
        if (fits(rule, have) && part.length >= rule.minWords) rules.push(rule);
      }
    }
    // Rules with no hook are always tried (compromise does not trim them by needs or ifNo either).
    for (const rule of net.always) if (part.length >= rule.minWords) rules.push(rule);
    for (const rule of rules) {
      // compromise tries a match from every term, copying the rest of the part for each; a rule whose
      // first token needs a certain word or tag starts at the first term that has it, or not at all.
      const test = firstTerm.get(rule);
      const from = test ? part.findIndex(test) : 0;
      if (from < 0) continue;
      for (const pointer of world.methods.one.match([from === 0 ? part : part.slice(from)], rule).ptrs) {
        pointer[0] = n;
        pointer[1]! += from;
        pointer[2]! += from;
        found.push({ ...rule, pointer });
      }
    }
  });
  return found;
}

/**
 * When a match of the rule can only start at a term its first token matches, that token's test, as
 * compromise's term match (doesMatch) makes it for a plain word, tag or (a|b) token; otherwise none.
 * Left out: optional, negative, wildcard and multi-word tokens (a match may start elsewhere or span
 * terms), tokens anchored at the end, and rules with a start anchor anywhere (whose test reads the
 * term's position in the whole part, which a match on the part's tail would shift).
 */
function firstTermTest({ regs }: NetRule): ((term: Term) => boolean) | undefined {
  const first = regs[0];
  if (!first || first.optional || first.negative || first.anything || first.choices !== undefined || first.end || first.id !== undefined) return undefined;
  if (JSON.stringify(regs).includes('"start":true')) return undefined;
  if (first.word !== undefined) {
    if (first.use !== undefined || first.fuzzy) return undefined;
    const word = first.word;
    return (term) => term.machine === word || term.alias?.includes(word) === true || term.text === word || term.normal === word;
  }
  if (first.tag !== undefined) {
    const tag = first.tag;
    return (term) => term.tags.has(tag);
  }
  if (first.fastOr !== undefined) {
    const { fastOr, pos } = first;
    return (term) => (!pos || term.tags.has(pos)) && (fastOr.has((term.root || term.implicit || term.machine || term.normal)!) || fastOr.has(term.text));
  }
  return undefined;
}

/** compromise's trim-down: every need present, no ifNo present, enough of the wants present. */
function fits(rule: NetRule, have: Set<string>): boolean {
  for (const need of rule.needs) if (!have.has(need)) return false;
  if (Array.isArray(rule.ifNo)) for (const no of rule.ifNo) if (have.has(no)) return false;
  if (rule.wants.length === 0) return true;
  let wanted = 0;
  for (const want of rule.wants) if (have.has(want)) wanted++;
  return wanted >= rule.minWant;
}
