import { Readability } from '@mozilla/readability';
import { Parser as StreamingParser } from 'htmlparser2';
import { parseHTML } from 'linkedom';
import { badInput } from '../../lib/errors';
import { fragmentBody, HEADING_LEVEL, htmlToSections, pruneFurniture } from './html-sections';
import { decodeText } from './text';
import type { Parser } from './types';

/** Real pages nest a few dozen elements deep; far past that, Readability is skipped. */
const MAX_READABLE_DEPTH = 256;
/**
 * Past this the page is refused: building the tree of a page nested deeper costs superlinear time
 * (40,000 levels: 0.7 s; 200,000: over a minute, past the parse stage's heartbeat, retried five times).
 */
const MAX_NESTING = 10_000;

/**
 * How deep the markup nests, by a streaming pass that builds no tree (void elements and implied end
 * tags closed as a browser would), stopping once past MAX_NESTING: refused then.
 */
function nestingOf(html: string): number {
  let depth = 0;
  let deepest = 0;
  const tooDeep = new Error('nested too deeply');
  const parser = new StreamingParser({
    onopentag() {
      deepest = Math.max(deepest, ++depth);
      if (depth > MAX_NESTING) throw tooDeep;
    },
    onclosetag() {
      depth--;
    },
  });
  try {
    parser.end(html);
  } catch (error) {
    if (error === tooDeep) throw badInput(`the HTML page is nested over ${MAX_NESTING.toLocaleString('en')} elements deep`);
    throw error;
  }
  return deepest;
}

/**
 * The page's document. Markup that is no whole page (bare text, a fragment, a lone <script>) gets
 * no <html> root from linkedom — the fragment's first element, or none — and neither Readability
 * nor `body` can read such a document once pruning removed that element: it is read as a body.
 */
function parsePage(html: string): ReturnType<typeof parseHTML>['document'] {
  const { document } = parseHTML(html);
  return document.documentElement?.tagName.toUpperCase() === 'HTML' ? document : parseHTML(`<html><body>${html}</body></html>`).document;
}

/**
 * HTML: Readability picks the article (dropping navigation, ads and page chrome); when it finds none
 * (a short page), the body is used with scripts, navigation, header, footer and asides removed.
 */
export const parseHtml: Parser = async (bytes, context) => {
  const html = decodeText(bytes, 'The HTML content', { contentType: context.declaredContentType, html: true });
  const nesting = nestingOf(html);
  const document = parsePage(html);
  pruneFurniture(document);
  const pageTitle = document.querySelector('title')?.textContent?.trim() || undefined;
  markHeadingLevels(document);
  // Readability edits the tree it reads: the fallback (a page too short for an article) re-parses.
  // Its scoring is superlinear in nesting (2,000 nested divs: 38 s; 5,000: a stack overflow), so a
  // page nested past any real layout's depth goes straight to the fallback.
  const article =
    nesting > MAX_READABLE_DEPTH
      ? null
      : new Readability(document as unknown as ConstructorParameters<typeof Readability>[0], { charThreshold: 200 }).parse();
  const wholePage = () => {
    const page = parsePage(html);
    pruneFurniture(page);
    return htmlToSections(page.body ?? page);
  };
  let { builder, firstHeading } = article?.content ? htmlToSections(fragmentBody(article.content)) : wholePage();
  if (builder.isEmpty && article?.content) ({ builder, firstHeading } = wholePage());
  if (builder.isEmpty) throw badInput('the HTML page contains no readable text');
  return builder.build({ format: 'HTML', detectedType: 'text/html', title: article?.title?.trim() || pageTitle || firstHeading });
};

/**
 * Readability turns every <h1> of the article into an <h2>, which would make a page's title heading
 * and its sections siblings: each heading keeps its level in an attribute, which the section walk reads.
 */
function markHeadingLevels(document: { querySelectorAll(selector: string): ArrayLike<unknown> }): void {
  for (const heading of Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')) as { nodeName: string; setAttribute(name: string, value: string): void }[]) {
    heading.setAttribute(HEADING_LEVEL, heading.nodeName.slice(1));
  }
}
