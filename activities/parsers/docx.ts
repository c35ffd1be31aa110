import mammoth from 'mammoth';
import { badInput } from '../../lib/errors';
import { fragmentBody, htmlToSections } from './html-sections';
import type { Parser } from './types';

/** DOCX: mammoth maps Word styles to HTML (Heading 1 → h1, lists, tables), then the HTML walker makes sections. */
export const parseDocx: Parser = async (bytes) => {
  let html: string;
  try {
    ({ value: html } = await mammoth.convertToHtml({ buffer: Buffer.from(bytes) }));
  } catch (error) {
    throw badInput(`the DOCX file could not be read: ${(error as Error).message}`);
  }
  const { builder, firstHeading } = htmlToSections(fragmentBody(html));
  if (builder.isEmpty) throw badInput('the DOCX document contains no text');
  return builder.build({
    format: 'DOCX',
    detectedType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    title: firstHeading,
  });
};
