import mammoth from 'mammoth';
import { badInput } from '../../lib/errors';
import { fragmentBody, htmlToSections } from './html-sections';
import type { Parser } from './types';

/** The largest word/document.xml read: about 50 million characters of text in the worst markup-to-text ratio seen. */
const MAX_DOCUMENT_XML_BYTES = 200_000_000;

/**
 * The uncompressed size a ZIP's central directory records for one entry (0 when it is absent or the
 * file is no ZIP: mammoth then says what is wrong). ZIP64 sizes count as unbounded.
 */
export function inflatedSize(zip: Buffer, entry: string): number {
  const floor = Math.max(0, zip.length - 22 - 0xffff);
  let end = -1;
  for (let at = zip.length - 22; at >= floor; at--) {
    if (zip.readUInt32LE(at) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) return 0;
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count && at + 46 <= zip.length && zip.readUInt32LE(at) === 0x02014b50; i++) {
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (name === entry) return size === 0xffffffff ? Number.POSITIVE_INFINITY : size;
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return 0;
}

/** DOCX: mammoth maps Word styles to HTML (Heading 1 → h1, lists, tables), then the HTML walker makes sections. */
export const parseDocx: Parser = async (bytes) => {
  // Checked before anything is inflated: a 1 MB file can hold a 400 MB document.xml.
  const inflated = inflatedSize(Buffer.from(bytes), 'word/document.xml');
  if (inflated > MAX_DOCUMENT_XML_BYTES) {
    throw badInput(`the DOCX document unpacks to ${Math.round(inflated / 1e6)} MB of XML, over the ${MAX_DOCUMENT_XML_BYTES / 1e6} MB limit`);
  }
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
