import { badInput } from '../../lib/errors';
import type { ParsedDocument, Section, SectionUnit } from '../../lib/domain/document';

/**
 * Builds a parsed document's text and its sections together, so every section's offsets index the
 * text exactly — the invariant chunk provenance (char_start/char_end) relies on.
 */
/**
 * The most text one document may expand to. Size limits bound the bytes sent, not what they unpack
 * to: a CSV repeating 2,000 long column names in every row, or deep JSON key paths, can turn a few MB
 * into hundreds of millions of characters and exhaust the worker. Past this, the job fails as bad input.
 */
export const MAX_DOCUMENT_CHARS = 50_000_000;

export class SectionBuilder {
  private readonly parts: string[] = [];
  private readonly sections: Section[] = [];
  private length = 0;

  /** Appends text that belongs to no section (a markdown heading line, a page break). */
  raw(text: string): void {
    if (this.length + text.length > MAX_DOCUMENT_CHARS) {
      throw badInput(`the content expands to over ${MAX_DOCUMENT_CHARS.toLocaleString('en')} characters of text, more than one document may hold`);
    }
    this.parts.push(text);
    this.length += text.length;
  }

  add(text: string, options: { heading?: string; unit?: SectionUnit; page?: number; separator?: string } = {}): void {
    const body = text.trim();
    if (!body) return;
    if (this.length > 0) this.raw(options.separator ?? '\n\n');
    this.sections.push({
      text: body,
      charStart: this.length,
      ...(options.heading ? { heading: options.heading } : {}),
      ...(options.unit && options.unit !== 'prose' ? { unit: options.unit } : {}),
      ...(options.page ? { page: options.page } : {}),
    });
    this.raw(body);
  }

  get isEmpty(): boolean {
    return this.sections.length === 0;
  }

  build(fields: Omit<ParsedDocument, 'text' | 'sections'>): ParsedDocument {
    return { ...fields, text: this.parts.join(''), sections: this.sections };
  }
}

/** Heading path shown before a chunk's text: outermost first. */
export const headingPath = (headings: string[]) => headings.filter(Boolean).join(' › ');
