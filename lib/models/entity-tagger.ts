import nlp from 'compromise';

/**
 * compromise's tagger, trimmed to what finding names needs. Its full run spends two thirds of its
 * time in the post-tagger, ~570 context rules that refine every part of speech (verb tenses,
 * adverbs, fractions…), and a further tenth chunking phrases; entity extraction reads only the tags
 * people(), places() and organizations() match on. Here the post-tagger runs only the rules that read
 * or write a name, place, organisation, noun, date or value tag (about 320: the ones name tags
 * depend on), and the chunker not at all. On ~6,000 texts (LoCoMo chats, READMEs, the ingest bench's
 * notes) the names found are identical to the full run's, at ~60% of its cost;
 * test/entity-tagger.test.ts holds the same comparison on a fixed sample, so a compromise upgrade
 * that breaks it fails there. compromise is pinned exactly for the same reason.
 */

interface Rule {
  match: string;
  tag?: string;
  unTag?: string;
  ifNo?: string | string[];
  notIf?: unknown;
}

interface World {
  model: { two: { matches: Rule[] } };
  methods: { two: { quickSplit(docs: Term[][]): Term[][] } };
}

interface Term {
  index: [number, number];
}

type Doc = ReturnType<typeof nlp>;
type Net = ReturnType<typeof nlp.buildNet>;

/** Tags a name depends on: the names themselves, the nouns they head, and what competes with them ("May", "GB"). */
const NAME_RULES =
  /Person|FirstName|LastName|MaleName|FemaleName|Honorific|Place|Country|City|Region|Address|Organization|SportsTeam|Company|School|ProperNoun|Acronym|Noun|Unit|Value|Money|Date|Month|WeekDay|Time|Holiday/;

/** The tokenizer's own steps (nlp.tokenize runs them) and the two this tagger leaves out or runs itself. */
const NOT_RECOMPUTED = new Set(['alias', 'normal', 'machine', 'contractions', 'postTagger', 'chunks']);

let tagger: { hooks: string[]; net: Net; world: World } | undefined;

function build(): NonNullable<typeof tagger> {
  const world = nlp.world() as World;
  // Copies: building a net parses rules in place, and compromise's own post-tagger builds from the
  // originals. A `notIf` compromise has already parsed must not be parsed twice: set aside, then restored.
  const rules = world.model.two.matches
    .filter((rule) => NAME_RULES.test(JSON.stringify([rule.tag, rule.unTag, rule.match, rule.ifNo])))
    .map((rule) => ({ ...rule }));
  const parsed = rules.map((rule) => (typeof rule.notIf === 'string' ? undefined : rule.notIf));
  rules.forEach((rule, i) => parsed[i] && (rule.notIf = undefined));
  const net = nlp.buildNet(rules as never);
  rules.forEach((rule, i) => parsed[i] && (rule.notIf = parsed[i]));
  return { hooks: nlp.hooks().filter((hook) => !NOT_RECOMPUTED.has(hook)), net, world };
}

/** The text tokenized and tagged far enough for people(), places() and organizations(). */
export function tagNames(text: string): Doc {
  tagger ??= build();
  const doc = nlp.tokenize(text);
  doc.compute(tagger.hooks);
  // As compromise's post-tagger does: rules match within comma-separated parts of each sentence.
  const parts = tagger.world.methods.two.quickSplit((doc as unknown as { docs: Term[][] }).docs);
  const view = doc.update(parts.map((terms) => [terms[0]!.index[0], terms[0]!.index[1], terms[0]!.index[1] + terms.length]) as never);
  view.sweep(tagger.net);
  doc.uncache();
  (doc as unknown as { unfreeze(): void }).unfreeze();
  return doc;
}
