import type { Chunk, Section } from '../domain/document';
import { countTokens, splitByTokens } from './tokens';

export interface ChunkOptions {
  maxTokens: number;
  overlapTokens: number;
}

interface Piece {
  text: string;
  start: number;
  end: number;
  tokens: number;
  heading?: string;
}

// Sentence ends: ., ! or ? (optionally closed by quotes/brackets) followed by whitespace.
const SENTENCE_END = /(?<=[.!?]["')\]]?)\s+(?=\S)/g;

/** Paragraphs, then sentences, then token windows: the largest structural unit that fits. */
function piecesOf(section: Section, maxTokens: number): Piece[] {
  const pieces: Piece[] = [];
  const push = (text: string, start: number) => {
    const trimmed = text.trim();
    if (!trimmed) return;
    const offset = start + text.indexOf(trimmed);
    const tokens = countTokens(trimmed);
    if (tokens <= maxTokens) {
      pieces.push({ text: trimmed, start: offset, end: offset + trimmed.length, tokens, heading: section.heading });
      return;
    }
    let cursor = offset;
    for (const window of splitByTokens(trimmed, maxTokens)) {
      pieces.push({ text: window.trim(), start: cursor, end: cursor + window.length, tokens: countTokens(window), heading: section.heading });
      cursor += window.length;
    }
  };

  const paragraphs = splitKeepingOffsets(section.text, /\n\s*\n/g);
  for (const paragraph of paragraphs) {
    if (countTokens(paragraph.text) <= maxTokens) {
      push(paragraph.text, section.charStart + paragraph.start);
      continue;
    }
    for (const sentence of splitKeepingOffsets(paragraph.text, SENTENCE_END)) {
      push(sentence.text, section.charStart + paragraph.start + sentence.start);
    }
  }
  return pieces;
}

function splitKeepingOffsets(text: string, separator: RegExp): { text: string; start: number }[] {
  const parts: { text: string; start: number }[] = [];
  let last = 0;
  for (const match of text.matchAll(separator)) {
    parts.push({ text: text.slice(last, match.index), start: last });
    last = match.index! + match[0].length;
  }
  parts.push({ text: text.slice(last), start: last });
  return parts.filter((part) => part.text.trim().length > 0);
}

/**
 * Packs structural pieces into chunks of at most maxTokens, never across a heading or an atomic
 * section, repeating the tail of the previous chunk (up to overlapTokens) for context.
 */
export function chunkSections(sections: Section[], options: ChunkOptions): Chunk[] {
  const chunks: Chunk[] = [];
  const emit = (pieces: Piece[], heading?: string) => {
    if (pieces.length === 0) return;
    const body = pieces.map((piece) => piece.text).join(pieceSeparator(pieces));
    const text = heading && !body.startsWith(heading) ? `${heading}\n${body}` : body;
    chunks.push({
      index: chunks.length,
      text,
      tokens: countTokens(text),
      charStart: pieces[0]!.start,
      charEnd: pieces[pieces.length - 1]!.end,
      heading,
    });
  };

  for (const section of sections) {
    if (section.atomic) {
      emit(piecesOf({ ...section, atomic: false }, Number.MAX_SAFE_INTEGER).slice(0, 1), section.heading);
      continue;
    }
    const headingTokens = section.heading ? countTokens(section.heading) + 1 : 0;
    const budget = Math.max(16, options.maxTokens - headingTokens);
    let current: Piece[] = [];
    let used = 0;
    for (const piece of piecesOf(section, budget)) {
      if (used + piece.tokens > budget && current.length > 0) {
        emit(current, section.heading);
        current = overlapTail(current, options.overlapTokens, budget - piece.tokens);
        used = current.reduce((sum, p) => sum + p.tokens, 0);
      }
      current.push(piece);
      used += piece.tokens;
    }
    emit(current, section.heading);
  }
  return chunks;
}

function overlapTail(pieces: Piece[], overlapTokens: number, room: number): Piece[] {
  const limit = Math.min(overlapTokens, room);
  const tail: Piece[] = [];
  let used = 0;
  for (let i = pieces.length - 1; i >= 0; i--) {
    if (used + pieces[i]!.tokens > limit) break;
    tail.unshift(pieces[i]!);
    used += pieces[i]!.tokens;
  }
  return tail;
}

function pieceSeparator(pieces: Piece[]): string {
  return pieces.length > 1 ? '\n\n' : '';
}
