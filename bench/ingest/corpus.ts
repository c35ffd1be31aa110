/** bench:ingest's corpus: generated documents of every format, and the chunks the pipeline makes of them. */
import { PARSERS, detectFormat } from '../../activities/parsers';
import { chunkSections } from '../../lib/chunking/chunk-text';
import type { Config } from '../../lib/config';
import { makeDocx, makePdf } from '../../test/fixtures/documents';

export type BenchFormat = 'TXT' | 'MARKDOWN' | 'HTML' | 'JSON' | 'CSV' | 'PDF' | 'DOCX';
export const FORMATS: BenchFormat[] = ['TXT', 'MARKDOWN', 'HTML', 'JSON', 'CSV', 'PDF', 'DOCX'];

export interface CorpusDocument {
  name: string;
  format: BenchFormat;
  bytes: Uint8Array;
}

// A seeded generator of plausible notes: the same corpus on every run, different text in every
// document (so no two documents share a source id and nothing is deduplicated away).
function random(seed: number) {
  let state = seed >>> 0 || 1;
  return () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}
const PEOPLE = ['Melanie', 'Caroline', 'Ana', 'João', 'Rui', 'Sofia', 'Tiago', 'Marta'];
const PLACES = ['Lisbon', 'Porto', 'Faro', 'Coimbra', 'Braga', 'Madeira', 'Sintra', 'Évora'];
const THINGS = ['harbour', 'tram line', 'cathedral', 'river bridge', 'market', 'museum', 'wine cellar', 'lighthouse', 'library', 'garden', 'bakery', 'ferry'];
const WORK = ['budget review', 'product launch', 'database migration', 'customer call', 'contract renewal', 'incident report', 'roadmap meeting', 'release plan'];
const DAYS = ['on Monday', 'last week', 'in March', 'yesterday', 'every morning', 'after lunch', 'before the holidays', 'at the weekend'];
const TEMPLATES: ((pick: <T>(list: T[]) => T) => string)[] = [
  (pick) => `${pick(PEOPLE)} visited the ${pick(THINGS)} in ${pick(PLACES)} ${pick(DAYS)} and said it was quieter than expected.`,
  (pick) => `The ${pick(WORK)} moved to ${pick(DAYS).replace(/^(on|in|at) /, '')} because the team was still waiting for numbers from the ${pick(PLACES)} office.`,
  (pick) => `${pick(PEOPLE)} and ${pick(PEOPLE)} agreed that the ${pick(WORK)} needs a clearer owner and a written summary.`,
  (pick) => `Near the ${pick(THINGS)} there is a small ${pick(THINGS)} that most visitors miss, especially ${pick(DAYS)}.`,
  (pick) => `According to the notes, the ${pick(WORK)} went well, although two questions about costs are still open.`,
  (pick) => `${pick(PEOPLE)} prefers the ${pick(THINGS)} in ${pick(PLACES)} to the one in ${pick(PLACES)}, mostly for the view.`,
];

function sentence(next: () => number): string {
  const pick = <T,>(list: T[]): T => list[Math.floor(next() * list.length)]!;
  return pick(TEMPLATES)(pick);
}
const paragraph = (next: () => number, sentences: number) => Array.from({ length: sentences }, () => sentence(next)).join(' ');

export async function makeDocument(index: number): Promise<CorpusDocument> {
  const next = random(index + 1);
  const format = FORMATS[index % FORMATS.length]!;
  const name = `bench-${index}`;
  // Sizes vary like real uploads: from a note of a few paragraphs to a report of a few dozen.
  const paragraphs = Array.from({ length: 4 + Math.floor(next() * 28) }, () => paragraph(next, 6));
  const encode = (text: string) => new TextEncoder().encode(text);
  switch (format) {
    case 'TXT':
      return { name, format, bytes: encode(paragraphs.join('\n\n')) };
    case 'MARKDOWN':
      return { name, format, bytes: encode(paragraphs.map((text, i) => `${i % 3 === 0 ? '#' : '##'} Part ${i + 1}\n\n${text}`).join('\n\n')) };
    case 'HTML':
      return {
        name,
        format,
        bytes: encode(`<!doctype html><html><head><title>${name}</title><script>var t=1</script></head><body><nav>Home</nav><article>` +
          paragraphs.map((text, i) => `<h2>Section ${i + 1}</h2><p>${text}</p>`).join('') + '</article><footer>footer</footer></body></html>'),
      };
    case 'JSON':
      return { name, format, bytes: encode(JSON.stringify({ title: name, entries: paragraphs.map((text, i) => ({ id: i, note: text, place: PLACES[i % PLACES.length] })) })) };
    case 'CSV':
      return {
        name,
        format,
        bytes: encode(['id,city,note', ...Array.from({ length: paragraphs.length * 10 }, (_, i) => `${i},${PLACES[Math.floor(next() * PLACES.length)]},"${sentence(next)}"`)].join('\n')),
      };
    case 'PDF':
      return { name, format, bytes: await makePdf(paragraphs.map((text) => wrap(text, 90))) };
    case 'DOCX':
      return { name, format, bytes: await makeDocx(paragraphs.map((text, i) => ({ heading: `Chapter ${i + 1}`, paragraphs: [text] }))) };
  }
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if ((line + ' ' + word).trim().length > width) {
      lines.push(line.trim());
      line = '';
    }
    line += ` ${word}`;
  }
  if (line.trim()) lines.push(line.trim());
  return lines;
}

/** The chunks the pipeline makes of the corpus, made here the same way, for the embedder-alone run. */
export async function chunkTexts(corpus: CorpusDocument[], config: Config): Promise<string[]> {
  const texts: string[] = [];
  for (const document of corpus) {
    const { format } = detectFormat(document.bytes, document.format);
    const parsed = await PARSERS[format](document.bytes, { format });
    for (const chunk of await chunkSections(parsed.sections, { maxTokens: config.CHUNK_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS })) texts.push(chunk.text);
  }
  return texts;
}
