import * as chrono from 'chrono-node';
import { parseLooseDate, statedOffsetMinutes } from '../domain/dates';
import type { Chunk } from '../domain/document';
import type { MemoryType } from '../domain/memory';
import { countTokens } from '../chunking/tokens';
import { badInput } from '../errors';
import { sentenceSpans } from '../text/sentences';
import { tagNames } from './entity-tagger';
import { sentencesThatMayName } from './name-sentences';
import type { ExtractedEntity, ExtractedMemory, ExtractionContext, Extractor } from './extractor';

/**
 * The local default extractor: no model call, only well-kept NLP libraries. compromise finds people,
 * places and organisations, in the sentences that may hold one (name-sentences.ts), with its tagger
 * trimmed to what names need (entity-tagger.ts); chrono-node resolves dates relative to the session
 * or document date ("yesterday" in a session of 8 May 2023 is 2023-05-07). Each chunk stays one
 * memory with its exact text — a paraphrase would lose recall — typed by what the text expresses.
 *
 * `fast` skips the part-of-speech parse (entities then come from speakers only); `long-range` runs it.
 */
export class NlpExtractor implements Extractor {
  readonly name: string;
  readonly cpuBound = true;
  readonly keepsChunkText = true;

  constructor(private readonly depth: 'fast' | 'full') {
    this.name = `nlp-${depth}`;
  }

  async extract(chunks: Chunk[], context: ExtractionContext) {
    const reference = referenceOf(context.referenceDate);
    let tokensIn = 0;
    const memories: ExtractedMemory[] = [];
    for (const chunk of chunks) {
      if (chunk.text.trim().length === 0) continue;
      tokensIn += chunk.tokens ?? countTokens(chunk.text);
      memories.push(this.memoryOf(chunk, reference));
      // Tagging is synchronous CPU work (milliseconds a chunk): yielding between chunks lets the
      // worker's other jobs answer their I/O meanwhile — above all hand their chunks to the
      // embedding thread, which otherwise idles until a whole batch has been tagged.
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Nothing is generated: tokens out are zero; tokens in are what a model would have read.
    return { memories, usage: { tokensIn, tokensOut: 0 } };
  }

  /**
   * Local analysis is deterministic: text that makes a library throw would throw on every retry, so
   * it is bad input (the batch is left out, or the job fails, saying why), not an outage to wait out.
   */
  private memoryOf(chunk: Chunk, reference: Reference | undefined): ExtractedMemory {
    try {
      return this.analyse(chunk, reference);
    } catch (error) {
      throw badInput(`chunk ${chunk.index} could not be analysed: ${(error as Error).message}`);
    }
  }

  private analyse(chunk: Chunk, reference: Reference | undefined): ExtractedMemory {
    const body = stripSpeakers(chunk);
    // "Yesterday" in a turn is the day before the turn was said, when the turn says when that was, in
    // the zone it was said in.
    const at = referenceOf(chunk.timestamp) ?? reference ?? { instant: new Date(), timezone: 0 };
    const dates = DATES.parse(body, at, { forwardDate: false }).filter((date) => !DURATION.test(date.text));
    const eventDates = [...new Set(dates.map((date) => eventDay(date, body, at)).filter(isDefined))];
    const entities = dedupeEntities([
      ...(chunk.speakers ?? []).filter((name) => !GENERIC_ROLES.has(name.toLowerCase())).map((name) => ({ name, type: 'person' })),
      ...(this.depth === 'full' ? namedEntities(body) : []),
    ]);
    const { type, confidence } = classify(body, eventDates.length > 0);
    return {
      text: chunk.text,
      type,
      confidence,
      entities,
      eventDates: eventDates.length ? eventDates : undefined,
      chunkIndex: chunk.index,
    };
  }
}

/**
 * Chat roles are not people: one tenant's many users would all merge into a single "user" entity.
 * A named speaker (a message's `name`, a transcript's "Caroline") is a person.
 */
const GENERIC_ROLES = new Set(['user', 'assistant', 'system', 'tool', 'developer', 'ai', 'bot', 'model', 'human']);

/** Conversation datasets write dates like "1:56 pm on 8 May, 2023"; ISO passes through. */
export const parseReferenceDate = parseLooseDate;

interface Reference {
  instant: Date;
  /** Minutes east of UTC: the zone whose days "yesterday" and "on Monday" count in. */
  timezone: number;
}

/** A reference date string → the instant and its zone (UTC unless the string states an offset). */
function referenceOf(value: string | undefined): Reference | undefined {
  const instant = parseReferenceDate(value);
  return instant ? { instant, timezone: statedOffsetMinutes(value) ?? 0 } : undefined;
}

/** The calendar day of parsed date components, in the reference's zone (not the day of its UTC instant). */
/**
 * chrono's English, except that a dotted numeric date (03.04.2024) is day first: written so in
 * Germany, Russia, Scandinavia and most places that use dots; chrono's English reads it month first
 * (4 March), as an American's 03/04/2024. One whose first number is over 12 chrono already reads
 * day first.
 */
const DATES = chrono.casual.clone();
DATES.refiners.push({
  refine: (_context, results) => {
    for (const result of results) {
      const dotted = /^(\d{1,2})\.(\d{1,2})\.\d{2,4}$/.exec(result.text);
      const [day, month] = [result.start.get('day'), result.start.get('month')];
      if (dotted && Number(dotted[1]) === month && Number(dotted[2]) === day && day !== month && day! <= 12) {
        result.start.assign('day', month!);
        result.start.assign('month', day!);
      }
    }
    return results;
  },
});

function dayOf(component: chrono.ParsedComponents, year = component.get('year')): string | undefined {
  const [month, day] = [component.get('month'), component.get('day')];
  if (year === null || month === null || day === null) return undefined;
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/**
 * A span of time, not a date: chrono reads "I've known them for 4 years" (and "for a week") as four
 * years (a week) from the reference, which would file a past friendship under a day in the future.
 */
const DURATION = /^for\b/i;

/** Words that put a sentence in the future: "we will meet in March", "the trip next May". */
const FUTURE = /\b(will|shall|going to|gonna|plan(s|ned|ning)? to|intend(s)? to|next|upcoming|soon|won't)\b|\w'll\b/i;

/**
 * The day a date in the text names. A month named without a year ("in March", "on May 5") gets, from
 * chrono, the year that puts it nearest the reference: said on 23 November 2026, "We met in March"
 * would be March 2027. What is remembered mostly happened: such a date is the latest one on or before
 * the reference, unless its sentence speaks of the future, then the first one after. (29 February
 * stays where chrono put it when the other year has none.)
 */
function eventDay(result: chrono.ParsedResult, text: string, reference: Reference): string | undefined {
  const { start } = result;
  const parsed = dayOf(start);
  const year = start.get('year');
  if (!parsed || year === null || start.isCertain('year') || !start.isCertain('month')) return parsed;
  const today = new Date(reference.instant.getTime() + reference.timezone * 60_000).toISOString().slice(0, 10);
  const sentence = sentenceSpans(text).find(({ end }) => end >= result.index + result.text.length) ?? { start: 0, end: text.length };
  const shift = FUTURE.test(text.slice(sentence.start, sentence.end)) ? (parsed < today ? 1 : 0) : parsed > today ? -1 : 0;
  if (shift === 0 || (start.get('month') === 2 && start.get('day') === 29 && !isLeapYear(year + shift))) return parsed;
  return dayOf(start, year + shift);
}

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

const isDefined = <T>(value: T | undefined): value is T => value !== undefined;

/** "Caroline: I went…" → "I went…": the speaker is an entity, not part of what was said. */
function stripSpeakers(chunk: Chunk): string {
  if (!chunk.speakers?.length) return chunk.text;
  return chunk.text
    .split('\n')
    .map((line) => {
      const colon = line.indexOf(': ');
      return colon > 0 && chunk.speakers!.includes(line.slice(0, colon)) ? line.slice(colon + 2) : line;
    })
    .join('\n');
}

function namedEntities(text: string): ExtractedEntity[] {
  const doc = tagNames(sentencesThatMayName(text));
  const clean = (names: string[], possessive: boolean) => names.map((name) => nameOf(name, possessive)).filter((name) => name.length > 1);
  return [
    ...clean(doc.people().out('array') as string[], true).map((name) => ({ name, type: 'person' })),
    ...clean(doc.places().out('array') as string[], true).map((name) => ({ name, type: 'place' })),
    ...clean(doc.organizations().out('array') as string[], false).map((name) => ({ name, type: 'organization' })),
  ];
}

/**
 * A name as the tagger found it, without what surrounds it in the text: a heading's "#", a table's
 * "|", punctuation, and for a person or place the possessive ("Caroline's plans" names Caroline; an
 * organisation may carry one in its name).
 */
function nameOf(found: string, possessive: boolean): string {
  const name = found.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
  return possessive ? name.replace(/['’]s$/iu, '') : name;
}

function dedupeEntities(entities: ExtractedEntity[]): ExtractedEntity[] {
  const seen = new Map<string, ExtractedEntity>();
  for (const entity of entities) {
    const key = entity.name.toLowerCase();
    if (!seen.has(key)) seen.set(key, entity);
  }
  return [...seen.values()];
}

const PREFERENCE = /\b(i|we)\s+(really\s+|just\s+|absolutely\s+)?(like|love|enjoy|prefer|adore|hate|dislike|can't stand|cannot stand)\b|\bfavou?rite\b|\b(i'm|i am)\s+(a big\s+)?fan of\b|\binto\s+\w+ing\b/i;
const EMOTION = /\b(i|we)\s+(feel|felt|am|was|'m)\s+(so\s+|really\s+|very\s+|super\s+)?(happy|sad|excited|anxious|nervous|scared|afraid|angry|upset|grateful|thankful|proud|lonely|stressed|overwhelmed|relieved|thrilled|heartbroken|frustrated|hopeful|worried)\b|\b(makes|made) me (feel|happy|sad)\b/i;
const FACT = /\b(i|we|he|she|they)\s+(am|are|is|was|were|have|has|work|works|live|lives|study|studies|own|owns)\b|\bmy\s+\w+\s+(is|are)\b/i;
const EVENT = /\b(went|visited|attended|started|finished|moved|met|joined|took|got|had|bought|ran|traveled|travelled|celebrated|graduated|will|going to|plan(ning)? to)\b/i;

/** What the text expresses, strongest signal first; plain narration stays an episode. */
function classify(text: string, hasDate: boolean): { type: MemoryType; confidence: number } {
  if (hasDate && EVENT.test(text)) return { type: 'temporal_event', confidence: 0.8 };
  if (EMOTION.test(text)) return { type: 'emotion', confidence: 0.75 };
  if (PREFERENCE.test(text)) return { type: 'preference', confidence: 0.75 };
  if (hasDate) return { type: 'temporal_event', confidence: 0.6 };
  if (FACT.test(text)) return { type: 'fact', confidence: 0.6 };
  return { type: 'episode', confidence: 0.9 };
}
