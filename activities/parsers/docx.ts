import zlib from 'node:zlib';
import mammoth from 'mammoth';
import { badInput } from '../../lib/errors';
import { fragmentBody, htmlToSections } from './html-sections';
import { isStackOverflow, type Parser } from './types';

/** The largest word/document.xml read. */
const MAX_DOCUMENT_XML_BYTES = 100_000_000;
/** What all of a DOCX's parts may unpack to together (styles, numbering, footnotes… are inflated too). */
const MAX_UNPACKED_BYTES = 200_000_000;
/**
 * The most XML tags word/document.xml may hold. mammoth builds a DOM of it, then the HTML walker one of
 * its HTML: measured at ~1.5 KB of heap a tag (a 1 MB document.xml of one-letter paragraphs, 185,000
 * tags, took 370 MB; 10 MB took 2.7 GB, and 190 MB took the worker down, again on every retry). 600,000
 * tags is about 900 MB at worst, and some 500 pages of densely formatted text.
 */
const MAX_DOCUMENT_XML_TAGS = 600_000;

interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  /** As the central directory records it (ZIP64's marker counts as unbounded). */
  size: number;
  localOffset: number;
}

/**
 * A ZIP's central directory (empty when the file is no ZIP: mammoth then says what is wrong). Read as
 * JSZip reads it — every record from the directory's start, whatever count the end record gives — and
 * refused when it is not what a plain ZIP is: a count of 0 or a ZIP64 marker would otherwise leave
 * parts unchecked that mammoth then inflates without bound.
 */
function zipEntries(zip: Buffer): ZipEntry[] {
  const floor = Math.max(0, zip.length - 22 - 0xffff);
  let end = -1;
  for (let at = zip.length - 22; at >= floor; at--) {
    if (zip.readUInt32LE(at) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) return [];
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  if (count === 0xffff || at === 0xffffffff) throw badInput('the DOCX file could not be read: ZIP64 archives are not supported (no DOCX within the size limit needs one)');
  const entries: ZipEntry[] = [];
  for (; at + 46 <= zip.length && zip.readUInt32LE(at) === 0x02014b50; ) {
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      size: size === 0xffffffff ? Number.POSITIVE_INFINITY : size,
      localOffset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  // The records end where the end record begins, and there are as many as it says: anything else is a
  // directory that mammoth might read otherwise than this check did.
  if (at !== end || entries.length !== count) throw badInput('the DOCX file could not be read: its ZIP directory does not match its end record');
  return entries;
}

/**
 * Refuses a DOCX that unpacks to more than it may, before mammoth (JSZip) inflates it: by the sizes
 * its directory records, and by inflating each deflated part with its recorded size as a hard cap —
 * JSZip checks a part's size only after inflating all of it, so a part that lies about its size
 * would otherwise unpack to gigabytes first.
 */
function assertUnpacksWithinLimits(zip: Buffer): void {
  const entries = zipEntries(zip);
  const document = entries.find((entry) => entry.name === 'word/document.xml')?.size ?? 0;
  if (document > MAX_DOCUMENT_XML_BYTES) {
    throw badInput(`the DOCX document unpacks to ${Math.round(document / 1e6)} MB of XML, over the ${MAX_DOCUMENT_XML_BYTES / 1e6} MB limit`);
  }
  const total = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (total > MAX_UNPACKED_BYTES) throw badInput(`the DOCX unpacks to ${Math.round(total / 1e6)} MB, over the ${MAX_UNPACKED_BYTES / 1e6} MB limit`);
  for (const entry of entries) {
    if ((entry.method !== 8 && entry.method !== 0) || entry.localOffset + 30 > zip.length) continue;
    const start = entry.localOffset + 30 + zip.readUInt16LE(entry.localOffset + 26) + zip.readUInt16LE(entry.localOffset + 28);
    const data = zip.subarray(start, start + entry.compressedSize);
    let unpacked: Buffer | undefined = entry.method === 0 ? data : undefined;
    try {
      if (entry.method === 8) unpacked = zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw badInput(`the DOCX part ${entry.name} unpacks to more than its recorded ${entry.size} bytes`);
      // Corrupt data: mammoth says what is wrong.
    }
    if (entry.name === 'word/document.xml' && unpacked) {
      const tags = countByte(unpacked, 0x3c);
      if (tags > MAX_DOCUMENT_XML_TAGS) {
        throw badInput(`the DOCX document has ${tags.toLocaleString('en')} XML tags, over the ${MAX_DOCUMENT_XML_TAGS.toLocaleString('en')} one document may have (reading it would take gigabytes): split it, or send it as PDF or text`);
      }
    }
  }
}

/** How many times a byte occurs in a buffer. */
function countByte(buffer: Buffer, byte: number): number {
  let count = 0;
  for (let at = buffer.indexOf(byte); at !== -1; at = buffer.indexOf(byte, at + 1)) count++;
  return count;
}

/** DOCX: mammoth maps Word styles to HTML (Heading 1 → h1, lists, tables), then the HTML walker makes sections. */
export const parseDocx: Parser = async (bytes) => {
  // Checked before mammoth inflates anything: a 1 MB file can hold a 400 MB document.xml.
  assertUnpacksWithinLimits(Buffer.from(bytes));
  let html: string;
  try {
    ({ value: html } = await mammoth.convertToHtml({ buffer: Buffer.from(bytes) }));
  } catch (error) {
    // The XML parser's own words ("[xmldom error]\telement parse error: … @#[line:undefined,col:undefined]")
    // say little to a caller: its XML is broken, said plainly, with the first line of the detail.
    const detail = String((error as Error)?.message ?? error);
    if (/xmldom|parse error/i.test(detail)) throw badInput('the DOCX file could not be read: its XML is malformed');
    // Tables in tables, content controls in content controls, thousands deep: no document is made so.
    if (isStackOverflow(error)) throw badInput('the DOCX file could not be read: its content is nested too deeply');
    throw badInput(`the DOCX file could not be read: ${detail.split('\n')[0]!.slice(0, 200)}`);
  }
  const { builder, firstHeading } = htmlToSections(fragmentBody(html));
  if (builder.isEmpty) throw badInput('the DOCX document contains no text');
  return builder.build({
    format: 'DOCX',
    detectedType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    title: firstHeading,
  });
};
