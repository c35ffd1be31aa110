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
  greedy?: boolean;
  regex?: RegExp;
  switch?: string;
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

type TermTest = (term: Term) => boolean;

/** A rule as the sweep tries it: its pattern's number, and the tests of its leading tokens (see leadingTests). */
interface Candidate {
  rule: NetRule;
  /** compromise tries a pattern once per part, under whichever hook finds it first. */
  pattern: number;
  leading?: TermTest[];
  /** The rule's needs, ifNo and wants as key numbers (see Tagger.keyIds), for fits(). */
  needs: Int32Array;
  ifNo: Int32Array;
  wants: Int32Array;
}

interface Tagger {
  hooks: string[];
  /** Each hook's rules, by hook key. */
  net: Map<string, Candidate[]>;
  always: Candidate[];
  /** Hook keys in the net's order, which is the order compromise tries (and applies) rules in. */
  rank: Map<string, number>;
  patterns: number;
  /** A number for every word or tag a rule's needs, wants or ifNo name. */
  keyIds: Map<string, number>;
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
  const ids = new Map<string, number>();
  const keyIds = new Map<string, number>();
  const keysOf = (keys: string[]) => Int32Array.from(keys, (key) => keyIds.get(key) ?? keyIds.set(key, keyIds.size).get(key)!);
  const candidates = new Map<NetRule, Candidate>();
  const candidate = (rule: NetRule): Candidate => {
    let made = candidates.get(rule);
    if (!made) {
      if (!ids.has(rule.match)) ids.set(rule.match, ids.size);
      made = {
        rule,
        pattern: ids.get(rule.match)!,
        leading: leadingTests(rule),
        needs: keysOf(rule.needs),
        ifNo: keysOf(Array.isArray(rule.ifNo) ? rule.ifNo : []),
        wants: keysOf(rule.wants),
      };
      candidates.set(rule, made);
    }
    return made;
  };
  const hooks = new Map(Object.entries(net.hooks).map(([key, rules]) => [key, rules.map(candidate)]));
  return {
    hooks: nlp.hooks().filter((hook) => !NOT_RECOMPUTED.has(hook)),
    net: hooks,
    always: net.always.map(candidate),
    rank: new Map([...hooks.keys()].map((key, i) => [key, i])),
    patterns: ids.size,
    keyIds,
    world,
  };
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
 * compromise's bulk match (src/1-one/sweep/methods/sweep), with two changes. The rules worth trying
 * on a part are looked up from the part's own words and tags, not by testing each of the net's ~550
 * hooks against every part (half of the sweep's time on short comma-separated parts). And a rule
 * whose leading tokens each need one term (a word, a tag, an (a|b)) is matched from the first term
 * where they all hold, or not at all: compromise tries every rule from every term, copying the rest
 * of the part each time, and 95% of the rules tried find nothing. Rules are tried, and their results
 * applied, in the same order as compromise's.
 */
function matchRules(parts: Term[][], { net, always, rank, patterns, keyIds, world }: Tagger): Found[] {
  const caches = world.methods.one.cacheDoc(parts);
  const found: Found[] = [];
  const triedIn = new Int32Array(patterns).fill(-1);
  // Which of the rules' keys the part has (its words and tags), by key number: set, then cleared, per part.
  const present = new Uint8Array(keyIds.size);
  parts.forEach((part, n) => {
    const have: number[] = [];
    const keys: string[] = [];
    for (const key of caches[n]!) {
      const id = keyIds.get(key);
      if (id === undefined) continue;
      present[id] = 1;
      have.push(id);
      if (rank.has(key)) keys.push(key);
    }
    keys.sort((a, b) => rank.get(a)! - rank.get(b)!);
    const todo: Candidate[] = [];
    for (const key of keys) {
      for (const candidate of net.get(key)!) {
        if (triedIn[candidate.pattern] === n) continue;
        triedIn[candidate.pattern] = n;
        if (part.length >= candidate.rule.minWords && fits(candidate, present)) todo.push(candidate);
      }
    }
    for (const id of have) present[id] = 0;
    // Rules with no hook are always tried (compromise does not trim them by needs or ifNo either).
    for (const candidate of always) if (part.length >= candidate.rule.minWords) todo.push(candidate);
    for (const { rule, leading } of todo) {
      const from = leading ? firstStart(part, leading) : 0;
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
 * The first term from which the leading tests hold on consecutive terms; -1 if none. A term that
 * begins a contraction ("we've": we, have) ends the check there as passed: compromise's match may
 * step over the contraction's hidden term after it.
 */
function firstStart(part: Term[], leading: TermTest[]): number {
  search: for (let start = 0; start < part.length; start++) {
    for (let k = 0; k < leading.length; k++) {
      const term = part[start + k];
      if (!term || !leading[k]!(term)) continue search;
      if (term.implicit) break;
    }
    return start;
  }
  return -1;
}

/**
 * When a match of the rule can only start where its first tokens match consecutive terms, those
 * tokens' tests, as compromise's term match (doesMatch) makes them for a plain word, tag or (a|b)
 * token; otherwise none. The run of tests stops at the first token that may match no term or
 * several (optional, negative, wildcard, greedy, multi-word), or that tests anything else. Rules
 * with a start anchor anywhere have none (their test reads the term's position in the whole part,
 * which a match on the part's tail would shift), nor do rules whose first token is anchored at the
 * end.
 */
function leadingTests({ regs }: NetRule): TermTest[] | undefined {
  if (regs[0]?.end || JSON.stringify(regs).includes('"start":true')) return undefined;
  const tests: TermTest[] = [];
  for (const reg of regs) {
    const test = termTest(reg);
    if (!test) break;
    tests.push(test);
  }
  return tests.length > 0 ? tests : undefined;
}

/** A token that matches exactly one term, by a word, a tag or an (a|b): its test; otherwise none. */
function termTest(reg: Reg): TermTest | undefined {
  if (reg.optional || reg.negative || reg.anything || reg.greedy || reg.choices !== undefined || reg.id !== undefined || reg.regex !== undefined || reg.switch !== undefined) {
    return undefined;
  }
  if (reg.word !== undefined) {
    if (reg.use !== undefined || reg.fuzzy || reg.pos !== undefined) return undefined;
    const word = reg.word;
    return (term) => term.machine === word || term.alias?.includes(word) === true || term.text === word || term.normal === word;
  }
  if (reg.tag !== undefined) {
    if (reg.pos !== undefined) return undefined;
    const tag = reg.tag;
    return (term) => term.tags.has(tag);
  }
  if (reg.fastOr !== undefined) {
    const { fastOr, pos } = reg;
    return (term) => (!pos || term.tags.has(pos)) && (fastOr.has((term.root || term.implicit || term.machine || term.normal)!) || fastOr.has(term.text));
  }
  return undefined;
}

/** compromise's trim-down: every need present, no ifNo present, enough of the wants present. */
function fits({ needs, ifNo, wants, rule }: Candidate, present: Uint8Array): boolean {
  for (let i = 0; i < needs.length; i++) if (present[needs[i]!] === 0) return false;
  for (let i = 0; i < ifNo.length; i++) if (present[ifNo[i]!] === 1) return false;
  if (wants.length === 0) return true;
  let wanted = 0;
  for (let i = 0; i < wants.length; i++) wanted += present[wants[i]!]!;
  return wanted >= rule.minWant;
}
