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
 * unpdf loads its pdf.js build with a dynamic import(), which Jest's VM cannot run without a flag;
 * requiring the same ESM bundle works in Node ≥ 20.19 and under Jest alike.
 */
function loadPdfjs(): Promise<void> {
  const bundle = path.join(path.dirname(require.resolve('unpdf')), 'pdfjs.mjs');
  return (pdfjsLoaded ??= definePDFJSModule(async () => require(bundle)));
}

/** PDF: one section per page (pdf.js via unpdf), so chunks keep their page; heartbeats page by page. */
export const parsePdf: Parser = async (bytes, context) => {
  await loadPdfjs();
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js takes ownership of (and detaches) the buffer it is given: hand it a copy.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 } as never);
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'PasswordException') throw badInput('the PDF is password-protected');
    throw badInput(`the PDF could not be read: ${(error as Error).message}`);
  }
  try {
    const builder = new SectionBuilder();
    const info = await pdf.getMetadata().catch(() => undefined);
    for (let number = 1; number <= pdf.numPages; number++) {
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
