import { z } from 'zod';
import { ConversationMessage } from './ingest';

/** A section of parsed text: a heading's body, a CSV row, a JSON leaf group. Offsets index `text`. */
export const Section = z.object({
  heading: z.string().optional(),
  text: z.string(),
  charStart: z.number().int(),
  /** Sections that must not be merged with neighbours (CSV rows are chunked row by row). */
  atomic: z.boolean().optional(),
});
export type Section = z.infer<typeof Section>;

/** What the parse stage writes to the blob store: plain text with structure, or conversation turns. */
export const ParsedDocument = z.object({
  format: z.string(),
  detectedType: z.string(),
  title: z.string().optional(),
  text: z.string(),
  sections: z.array(Section),
  turns: z.array(ConversationMessage).optional(),
  sessionDate: z.string().optional(),
});
export type ParsedDocument = z.infer<typeof ParsedDocument>;

export const Chunk = z.object({
  index: z.number().int(),
  text: z.string(),
  tokens: z.number().int(),
  charStart: z.number().int().optional(),
  charEnd: z.number().int().optional(),
  heading: z.string().optional(),
  turnStart: z.number().int().optional(),
  turnEnd: z.number().int().optional(),
  turnIds: z.array(z.string()).optional(),
  speakers: z.array(z.string()).optional(),
  timestamp: z.string().optional(),
});
export type Chunk = z.infer<typeof Chunk>;
