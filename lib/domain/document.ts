import { z } from 'zod';
import { ConversationMessage } from './ingest';

/**
 * How the chunker may treat a section: `prose` is packed by paragraph and sentence with overlap,
 * `row` sections (CSV rows, JSON records) are packed whole without overlap, `atomic` ones become one
 * chunk each (conversation turns).
 */
export const SectionUnit = z.enum(['prose', 'row', 'atomic']);
export type SectionUnit = z.infer<typeof SectionUnit>;

/** A section of parsed text: a heading's body, a CSV row, a PDF page. `text` is `document.text.slice(charStart, charStart + text.length)`. */
export const Section = z.object({
  /** Heading path, outermost first ("Guide › Install › Linux"). */
  heading: z.string().optional(),
  text: z.string(),
  charStart: z.number().int(),
  unit: SectionUnit.optional(),
  /** Sections that must not be merged with neighbours (kept for older parsed blobs; same as unit `atomic`). */
  atomic: z.boolean().optional(),
  /** 1-based PDF page the section comes from. */
  page: z.number().int().optional(),
});
export type Section = z.infer<typeof Section>;

/** What the parse stage writes to the blob store: plain text with structure, or conversation turns. */
export const ParsedDocument = z.object({
  format: z.string(),
  /** The media type found in the bytes, which may differ from the declared format. */
  detectedType: z.string(),
  title: z.string().optional(),
  text: z.string(),
  sections: z.array(Section),
  turns: z.array(ConversationMessage).optional(),
  sessionDate: z.string().optional(),
  pages: z.number().int().optional(),
});
export type ParsedDocument = z.infer<typeof ParsedDocument>;

export const Chunk = z.object({
  index: z.number().int(),
  text: z.string(),
  tokens: z.number().int(),
  /** Offsets into the parsed text: `text` without its heading line is that slice. */
  charStart: z.number().int().optional(),
  charEnd: z.number().int().optional(),
  heading: z.string().optional(),
  page: z.number().int().optional(),
  turnStart: z.number().int().optional(),
  turnEnd: z.number().int().optional(),
  /** A window of a message too long for one chunk: its number within the message (0 for the first). */
  turnPart: z.number().int().optional(),
  turnIds: z.array(z.string()).optional(),
  speakers: z.array(z.string()).optional(),
  timestamp: z.string().optional(),
});
export type Chunk = z.infer<typeof Chunk>;
