import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import { badInput } from '../../lib/errors';
import { fragmentBody, htmlToSections } from './html-sections';
import { decodeUtf8 } from './text';
import type { Parser } from './types';

/**
 * HTML: Readability picks the article (dropping navigation, ads and page chrome); when it finds none
 * (a short page), the body is used with scripts, navigation, header, footer and asides removed.
 */
export const parseHtml: Parser = async (bytes) => {
  const html = decodeUtf8(bytes, 'The HTML content');
  const { document } = parseHTML(html);
  const pageTitle = document.querySelector('title')?.textContent?.trim() || undefined;
  // Readability edits the tree it reads: the fallback (a page too short for an article) re-parses.
  const article = new Readability(document as unknown as ConstructorParameters<typeof Readability>[0], { charThreshold: 200 }).parse();
  const wholePage = () => {
    const page = parseHTML(html).document;
    return htmlToSections(page.body ?? page);
  };
  let { builder, firstHeading } = article?.content ? htmlToSections(fragmentBody(article.content)) : wholePage();
  if (builder.isEmpty && article?.content) ({ builder, firstHeading } = wholePage());
  if (builder.isEmpty) throw badInput('the HTML page contains no readable text');
  return builder.build({ format: 'HTML', detectedType: 'text/html', title: article?.title?.trim() || pageTitle || firstHeading });
};
