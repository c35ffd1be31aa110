import { parseHTML } from 'linkedom';
import { SectionBuilder, headingPath } from './sections';

// Elements whose text is never content: code, navigation, page furniture, forms.
const SKIPPED = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'IFRAME', 'SVG', 'CANVAS', 'NAV', 'HEADER', 'FOOTER', 'ASIDE', 'FORM', 'BUTTON', 'SELECT', 'HEAD']);
const HEADINGS = new Set(['H1', 'H2', 'H3', 'H4', 'H5', 'H6']);
const BLOCKS = new Set([
  'P', 'DIV', 'SECTION', 'ARTICLE', 'MAIN', 'LI', 'UL', 'OL', 'DL', 'DT', 'DD', 'PRE', 'BLOCKQUOTE', 'TABLE', 'THEAD',
  'TBODY', 'TR', 'FIGURE', 'FIGCAPTION', 'ADDRESS', 'DETAILS', 'SUMMARY', 'HR', 'BR',
]);
const CELLS = new Set(['TD', 'TH']);

interface DomNode {
  nodeType: number;
  nodeName: string;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
  getAttribute?(name: string): string | null;
}

/** The attribute a heading's level is kept in through Readability (html.ts: markHeadingLevels). */
export const HEADING_LEVEL = 'data-cairn-level';

/**
 * Walks an HTML tree into sections: each heading starts a section carrying the heading path, block
 * elements become paragraphs (blank-line separated, which the chunker splits on), table cells are
 * joined with " | " so a row stays one line.
 */
export function htmlToSections(root: DomNode, builder = new SectionBuilder()): { builder: SectionBuilder; firstHeading?: string } {
  const path: string[] = [];
  let firstHeading: string | undefined;
  let paragraphs: string[] = [];
  let line = '';

  const endLine = () => {
    const text = line.replace(/[ \t\u00a0]+/g, ' ').trim();
    if (text) paragraphs.push(text);
    line = '';
  };
  const flush = () => {
    endLine();
    builder.add(paragraphs.join('\n\n'), { heading: headingPath(path) || undefined });
    paragraphs = [];
  };

  // Depth-first with a stack of its own, not recursion: a page nested thousands of elements deep
  // overflowed the call stack. A block element ends its line again once its children are read.
  const stack: { node: DomNode; closesBlock?: boolean }[] = [{ node: root }];
  while (stack.length > 0) {
    const { node, closesBlock } = stack.pop()!;
    if (closesBlock) {
      endLine();
      continue;
    }
    if (node.nodeType === 3) {
      line += node.textContent ?? '';
      continue;
    }
    if (node.nodeType !== 1 && node.nodeType !== 9 && node.nodeType !== 11) continue;
    const name = node.nodeName.toUpperCase();
    if (SKIPPED.has(name) || isHidden(node)) continue;
    if (HEADINGS.has(name)) {
      flush();
      const level = Number(node.getAttribute?.(HEADING_LEVEL) ?? name[1]) || Number(name[1]);
      const text = (node.textContent ?? '').replace(/\s+/g, ' ').trim();
      if (text) {
        path.length = level - 1;
        path[level - 1] = text;
        firstHeading ??= text;
      }
      continue;
    }
    const block = BLOCKS.has(name);
    if (block) endLine();
    if (name === 'PRE') {
      line += node.textContent ?? '';
      endLine();
      continue;
    }
    if (CELLS.has(name) && line.trim()) line += ' | ';
    if (block) stack.push({ node, closesBlock: true });
    const children = node.childNodes;
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]! });
  }
  flush();
  return { builder, firstHeading };
}

/**
 * Landmark roles of page furniture, and the class or id names sites give their navigation — whole
 * names only: `has-sidebar` on a body or `has-navbar-fixed-top` on <html> describe the page, not a menu.
 */
const FURNITURE_ROLES = new Set(['navigation', 'banner', 'contentinfo', 'complementary', 'search', 'menubar']);
const FURNITURE_NAMES = new Set(['nav', 'navbar', 'navigation', 'breadcrumb', 'breadcrumbs', 'sidebar', 'skip-link', 'cookie-banner', 'cookie-notice']);
/** Containers of the content itself, never pruned whatever they are called. */
const CONTENT_ELEMENTS = new Set(['HTML', 'BODY', 'MAIN', 'ARTICLE']);
const named = (value: string | null) => (value ?? '').toLowerCase().split(/\s+/).some((name) => FURNITURE_NAMES.has(name));

/**
 * Takes page furniture out of a parsed page before anything reads it: Readability drops class names
 * from what it returns, and on a short page it returns the navigation with the text.
 */
export function pruneFurniture(document: { querySelectorAll(selector: string): ArrayLike<unknown> }): void {
  for (const element of Array.from(document.querySelectorAll('[role],[class],[id]')) as (DomNode & { remove(): void })[]) {
    if (!CONTENT_ELEMENTS.has(element.nodeName) && isHidden(element)) element.remove();
  }
}

function isHidden(node: DomNode): boolean {
  const attribute = (name: string) => node.getAttribute?.(name) ?? null;
  return (
    attribute('hidden') !== null ||
    attribute('aria-hidden') === 'true' ||
    FURNITURE_ROLES.has(attribute('role') ?? '') ||
    named(attribute('class')) ||
    named(attribute('id'))
  );
}

/** An HTML fragment's body. linkedom only builds a proper body for a whole document. */
export function fragmentBody(html: string): DomNode {
  return parseHTML(`<!doctype html><html><head></head><body>${html}</body></html>`).document.body as unknown as DomNode;
}
