import type { Chunk, Section } from '../domain/document';
import { countTokens, tokenSpans, type Span } from './tokens';
import { FULL_STOP } from '../text/sentences';

export interface ChunkOptions {
  maxTokens: number;
  overlapTokens: number;
  /** Called each time chunking gives way (every GIVE_WAY_MS), so a long chunking run can heartbeat. */
  onProgress?: (chunks: number) => void;
}

/**
 * How long chunking runs before it lets timers and sockets have their turn. A worker has one
 * JavaScript thread: a document of 47 million characters took 70 s to chunk, 59 s of it without a
 * pause, in which no heartbeat left (its activity timed out, five times over) and no other job's
 * workflow task ran.
 */
const GIVE_WAY_MS = 50;

/** A pause, due every GIVE_WAY_MS of work, in which the event loop runs what waits (see GIVE_WAY_MS). */
function pacer(onPause: () => void): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < GIVE_WAY_MS) return;
    onPause();
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

/** A unit the packer never splits: a paragraph, a sentence, a token window, or a row. Offsets are absolute. */
interface Piece extends Span {
  tokens: number;
  /** Which paragraph of the section the piece belongs to. */
  paragraph?: number;
}

// Sentence ends: ., ! or ? (optionally closed by quotes/brackets) followed by whitespace, or a full
// stop of a script that needs no space after it (Chinese, Japanese, Devanagari, Arabic: FULL_STOP).
const SENTENCE_END = new RegExp(`(?<=[.!?…]["'”’)\\]]?)\\s+(?=\\S)|(?<=${FULL_STOP})\\s*(?=\\S)`, 'g');
const PARAGRAPH_BREAK = /\n\s*\n/g;

/**
 * Structure-aware chunking: sections never share a chunk (a heading's body stays under its heading
 * path), prose is packed paragraph by paragraph — splitting a paragraph into sentences, and a
 * sentence into token windows, only when it does not fit — with the tail of the previous chunk
 * repeated for context. Rows (CSV, JSON records) are packed whole, without overlap. Every chunk keeps
 * the character range it came from.
 */
export async function chunkSections(sections: Section[], options: ChunkOptions): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  const pace = pacer(() => options.onProgress?.(chunks.length));
  const emit = (section: Section, pieces: Piece[], text?: string) => {
    if (pieces.length === 0) return;
    const first = pieces[0]!;
    const last = pieces[pieces.length - 1]!;
    const body = text ?? section.text.slice(first.start - section.charStart, last.end - section.charStart).trim();
    const full = section.heading ? `${section.heading}\n${body}` : body;
    chunks.push({
      index: chunks.length,
      text: full,
      tokens: countTokens(full),
      charStart: first.start,
      charEnd: last.end,
      ...(section.heading ? { heading: section.heading } : {}),
      ...(section.page ? { page: section.page } : {}),
    });
  };

  for (let i = 0; i < sections.length; i++) {
    const section = sections[i]!;
    const budget = budgetFor(section, options.maxTokens);
    const unit = section.atomic ? 'atomic' : section.unit ?? 'prose';
    if (unit === 'row') {
      // Consecutive rows under the same heading pack together; the document joins them with "\n".
      const rows: Section[] = [section];
      while (sections[i + 1]?.unit === 'row' && sections[i + 1]!.heading === section.heading) rows.push(sections[++i]!);
      await packRows(rows, budget, pace, (group) =>
        emit(section, group.pieces, group.rows.map((row) => row.text).join('\n')),
      (row, spans) => spans.forEach((span) => emit(row, [span])));
      continue;
    }
    if (unit === 'atomic') {
      windows(section, budget).forEach((piece) => emit(section, [piece]));
      continue;
    }
    await packProse(section, budget, options.overlapTokens, pace, (pieces) => emit(section, pieces));
    await pace();
  }
  options.onProgress?.(chunks.length);
  return chunks;
}

function budgetFor(section: Section, maxTokens: number): number {
  const headingTokens = section.heading ? countTokens(section.heading) + 1 : 0;
  return Math.max(16, maxTokens - headingTokens);
}

/** Token windows of a whole section (absolute offsets). */
function windows(section: Section, budget: number): Piece[] {
  return windowsOf(section, { start: 0, end: section.text.length }, budget);
}

/**
 * Token windows of a span (relative to the section), each within the budget once trimmed: a window
 * that begins with a space loses it, and " naïve" is fewer tokens than "naïve", so a trimmed window
 * over the budget is windowed again.
 */
function windowsOf(section: Section, span: Span, budget: number): Piece[] {
  // Trimmed first: a window is counted as the text it will be.
  const raw = section.text.slice(span.start, span.end);
  const trimmed = { start: span.start + (raw.length - raw.trimStart().length), end: span.end - (raw.length - raw.trimEnd().length) };
  const text = section.text.slice(trimmed.start, trimmed.end);
  if (!text) return [];
  return tokenSpans(text, budget).flatMap((window) => {
    const piece = toPiece(section, { start: trimmed.start + window.start, end: trimmed.start + window.end });
    if (piece.tokens <= budget || window.end - window.start >= text.length) return [piece];
    return windowsOf(section, { start: piece.start - section.charStart, end: piece.end - section.charStart }, budget);
  });
}

function toPiece(section: Section, span: Span): Piece {
  const text = section.text.slice(span.start, span.end);
  const lead = text.length - text.trimStart().length;
  const trail = text.length - text.trimEnd().length;
  const start = section.charStart + span.start + lead;
  const end = section.charStart + span.end - trail;
  return { start, end, tokens: countTokens(text.trim()) };
}

/** Paragraphs that fit, else their sentences, else token windows of a sentence. */
async function prosePieces(section: Section, budget: number, pace: () => Promise<void>): Promise<Piece[]> {
  const pieces: Piece[] = [];
  for (const [index, paragraph] of spansBetween(section.text, PARAGRAPH_BREAK, { start: 0, end: section.text.length }).entries()) {
    await pace();
    const piece = toPiece(section, paragraph);
    if (piece.tokens <= budget) {
      pieces.push({ ...piece, paragraph: index });
      continue;
    }
    for (const sentence of spansBetween(section.text, SENTENCE_END, paragraph)) {
      const candidate = toPiece(section, sentence);
      if (candidate.tokens <= budget) {
        pieces.push({ ...candidate, paragraph: index });
        continue;
      }
      for (const window of windowsOf(section, sentence, budget)) pieces.push({ ...window, paragraph: index });
    }
  }
  return pieces.filter((piece) => piece.end > piece.start);
}

function spansBetween(text: string, separator: RegExp, within: Span): Span[] {
  const slice = text.slice(within.start, within.end);
  const spans: Span[] = [];
  let last = 0;
  for (const match of slice.matchAll(separator)) {
    spans.push({ start: within.start + last, end: within.start + match.index! });
    last = match.index! + match[0].length;
  }
  spans.push({ start: within.start + last, end: within.end });
  return spans.filter((span) => text.slice(span.start, span.end).trim().length > 0);
}

async function packProse(section: Section, budget: number, overlapTokens: number, pace: () => Promise<void>, emit: (pieces: Piece[]) => void): Promise<void> {
  let current: Piece[] = [];
  let used = 0;
  for (const piece of await prosePieces(section, budget, pace)) {
    const previous = current[current.length - 1];
    const newParagraph = previous !== undefined && previous.paragraph !== piece.paragraph;
    // +1: the whitespace joining two pieces can cost a token. A paragraph boundary is a better cut
    // than the budget's: take it once the chunk is half full, and carry no overlap across it.
    if (current.length > 0 && (used + piece.tokens + 1 > budget || (newParagraph && used >= budget / 2))) {
      emit(current);
      current = newParagraph ? [] : overlapTail(current, overlapTokens, budget - piece.tokens - 1);
      used = current.reduce((sum, p) => sum + p.tokens + 1, 0);
    }
    current.push(piece);
    used += piece.tokens + 1;
  }
  emit(current);
}

/** The last pieces of a chunk (within the overlap and the room left), never the whole chunk again. */
function overlapTail(pieces: Piece[], overlapTokens: number, room: number): Piece[] {
  const limit = Math.min(overlapTokens, room);
  const tail: Piece[] = [];
  let used = 0;
  for (let i = pieces.length - 1; i >= 1; i--) {
    if (used + pieces[i]!.tokens + 1 > limit) break;
    tail.unshift(pieces[i]!);
    used += pieces[i]!.tokens + 1;
  }
  return tail;
}

async function packRows(
  rows: Section[],
  budget: number,
  pace: () => Promise<void>,
  emitGroup: (group: { rows: Section[]; pieces: Piece[] }) => void,
  emitOversized: (row: Section, spans: Piece[]) => void,
): Promise<void> {
  let group: Section[] = [];
  let pieces: Piece[] = [];
  let used = 0;
  const flush = () => {
    if (group.length) emitGroup({ rows: group, pieces });
    group = [];
    pieces = [];
    used = 0;
  };
  for (const row of rows) {
    await pace();
    const tokens = countTokens(row.text);
    if (tokens > budget) {
      flush();
      emitOversized(row, windows(row, budget));
      continue;
    }
    if (group.length > 0 && used + tokens + 1 > budget) flush();
    group.push(row);
    pieces.push({ start: row.charStart, end: row.charStart + row.text.length, tokens });
    used += tokens + 1;
  }
  flush();
}
