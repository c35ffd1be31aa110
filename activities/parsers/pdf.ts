import path from 'node:path';
import { definePDFJSModule, getDocumentProxy } from 'unpdf';
import { badInput } from '../../lib/errors';
import { SectionBuilder } from './sections';
import type { Parser } from './types';

interface TextItem {
  str?: string;
  hasEOL?: boolean;
}

let pdfjsLoaded: Promise<void> | undefined;

/**
 * pdf.js's character maps and standard font data, which unpdf's bundle leaves out: without the maps, a
 * page set in a CJK font through a predefined CMap (UniGB-UCS2-H and its like, common in Chinese,
 * Japanese and Korean PDFs) reads as no text at all. From pdfjs-dist of the pdf.js version unpdf
 * bundles (5.6.205; pinned together in package.json).
 */
const PDFJS_DATA = path.dirname(require.resolve('pdfjs-dist/package.json'));

/**
 * unpdf loads its pdf.js build with a dynamic import(), which Jest's VM cannot run without a flag;
 * requiring the same ESM bundle works in Node ≥ 20.19 and under Jest alike.
 */
function loadPdfjs(): Promise<void> {
  const bundle = path.join(path.dirname(require.resolve('unpdf')), 'pdfjs.mjs');
  return (pdfjsLoaded ??= definePDFJSModule(async () => require(bundle)));
}

/**
 * The most pages read, and the longest a read may take. pdf.js finds each page by walking the page
 * tree, fetching every kid before it: a tree of one flat list makes a PDF of n pages cost n² (10,000
 * one-line pages, 1.6 MB, took 15–28 s; 30,000 took 5 minutes; 120,000 fitted in 19 MB). Real PDFs'
 * trees are balanced, and few have more pages than this.
 */
const MAX_PDF_PAGES = 10_000;
const MAX_PDF_READ_MS = 120_000;

/** Lets timers and sockets run: pdf.js answers its own messages as promises, which never give way to them. */
const giveWay = () => new Promise<void>((resolve) => setImmediate(resolve));

/** PDF: one section per page (pdf.js via unpdf), so chunks keep their page; heartbeats page by page. */
export const parsePdf: Parser = async (bytes, context) => {
  await loadPdfjs();
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js takes ownership of (and detaches) the buffer it is given: hand it a copy.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0, cMapUrl: `${PDFJS_DATA}/cmaps/`, cMapPacked: true, standardFontDataUrl: `${PDFJS_DATA}/standard_fonts/` } as never);
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'PasswordException') throw badInput('the PDF is password-protected');
    throw badInput(`the PDF could not be read: ${(error as Error).message}`);
  }
  try {
    if (pdf.numPages > MAX_PDF_PAGES) throw badInput(`the PDF has ${pdf.numPages.toLocaleString('en')} pages, over the ${MAX_PDF_PAGES.toLocaleString('en')} one may have: split it`);
    const builder = new SectionBuilder();
    const info = await pdf.getMetadata().catch(() => undefined);
    const started = performance.now();
    for (let number = 1; number <= pdf.numPages; number++) {
      // Between pages the worker's other work runs (heartbeats, other jobs' I/O), and a read that
      // takes too long stops: a parse holds the worker's CPU turn (lib/cpu-turns.ts) for all tenants.
      await giveWay();
      if (performance.now() - started > MAX_PDF_READ_MS) {
        throw badInput(`the PDF took over ${MAX_PDF_READ_MS / 60_000} minutes to read (page ${number} of ${pdf.numPages}): its page tree makes each page slow to find; split it or save it again`);
      }
      const page = await pdf.getPage(number);
      const content = await page.getTextContent();
      const text = (content.items as TextItem[]).map((item) => (item.str ?? '') + (item.hasEOL ? '\n' : '')).join('');
      builder.add(text.replace(/[ \t]+\n/g, '\n'), { page: number, separator: '\n\n' });
      page.cleanup();
      context.onProgress?.(number);
    }
    if (builder.isEmpty) throw badInput('the PDF has no extractable text (scanned images need OCR, which is not enabled)');
    const title = (info?.info as { Title?: string } | undefined)?.Title?.trim() || undefined;
    return builder.build({ format: 'PDF', detectedType: 'application/pdf', title, pages: pdf.numPages });
  } catch (error) {
    if ((error as { code?: string }).code === 'bad_input') throw error;
    throw badInput(`the PDF could not be read: ${(error as Error).message}`);
  } finally {
    await pdf.destroy();
  }
};
