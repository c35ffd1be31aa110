import { badInput } from '../../lib/errors';
import { SectionBuilder, headingPath } from './sections';
import { decodeText } from './text';
import type { Parser } from './types';
import { clipChars } from '../../lib/text/clip';

const ATX_OPENING = /^ {0,3}(#{1,6})[ \t]+(?=\S)/;
/** Headings longer than this are cut before their inline markup is stripped (a heading is a title, not a body). */
const MAX_HEADING_CHARS = 500;

/**
 * An ATX heading's level and text, or null. Matched by an anchored opening and a hand-trimmed end:
 * a lazy text group before "[ \t#]*$" backtracks quadratically on a line of a million spaces.
 */
function atxHeading(line: string): { level: number; text: string } | null {
  const opening = ATX_OPENING.exec(line);
  if (!opening) return null;
  let end = line.length;
  while (end > opening[0].length && ' \t#'.includes(line[end - 1]!)) end--;
  return { level: opening[1]!.length, text: line.slice(opening[0].length, end) };
}
const FENCE = /^ {0,3}(```|~~~)/;

/**
 * Markdown: one section per heading, carrying the heading path (h1 › h2 › h3), so a chunk deep in a
 * document still says what it is about. Headings inside code fences are code, not structure.
 */
export const parseMarkdown: Parser = async (bytes, context) => {
  const source = decodeText(bytes, 'The MARKDOWN content', { contentType: context.declaredContentType });
  const lines = source.split('\n');
  const builder = new SectionBuilder();
  const path: string[] = [];
  let title: string | undefined;
  // YAML front matter (--- … --- at the very top) is the document's metadata, not a setext heading:
  // kept as one plain section, its title as the document's.
  const close = lines[0]?.trim() === '---' ? lines.slice(1, 200).findIndex((line) => /^(---|\.\.\.)\s*$/.test(line)) + 1 : 0;
  if (close > 0) {
    const front = lines.slice(1, close);
    title = front.map((line) => /^title:\s*(.+)$/i.exec(line)?.[1]?.trim().replace(/^(["'])(.*)\1$/, '$2')).find(Boolean);
    builder.add(front.join('\n'));
    lines.fill('', 0, close + 1);
  }
  let body: string[] = [];
  let inFence = false;
  const headings: string[] = [];

  const flush = () => {
    builder.add(body.join('\n'), { heading: headingPath(path) || undefined });
    body = [];
  };

  lines.forEach((line, i) => {
    if (FENCE.test(line)) inFence = !inFence;
    const heading = inFence ? null : atxHeading(line);
    // Setext headings: a text line underlined with === or ---.
    const underline = !inFence && i + 1 < lines.length && line.trim() && /^ {0,3}(=+|-+)\s*$/.test(lines[i + 1]!) ? lines[i + 1]!.trim()[0] : null;
    if (heading || underline) {
      flush();
      const level = heading ? heading.level : underline === '=' ? 1 : 2;
      const text = stripInline(clipChars(heading ? heading.text : line.trim(), MAX_HEADING_CHARS));
      path.length = level - 1;
      path[level - 1] = text;
      headings.push(text);
      title ??= level === 1 ? text : undefined;
      if (underline) lines[i + 1] = '';
      return;
    }
    body.push(line);
  });
  flush();
  // Only headings ("# Groceries", an outline): they are its text.
  if (builder.isEmpty && headings.some(Boolean)) builder.add(headings.filter(Boolean).join('\n'));
  if (builder.isEmpty) throw badInput('the markdown document contains no text');
  const document = builder.build({ format: 'MARKDOWN', detectedType: 'text/markdown', title });
  // Holes in the path (an h3 under an h1) leave empty slots; the builder already skipped them.
  return document;
};

function stripInline(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[*_`]+/g, '')
    .trim();
}
