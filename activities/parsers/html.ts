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
  // Readability mutates the tree it reads, so it gets its own copy.
  const article = new Readability(parseHTML(html).document as unknown as ConstructorParameters<typeof Readability>[0], { charThreshold: 200 }).parse();
  let { builder, firstHeading } = article?.content ? htmlToSections(fragmentBody(article.content)) : htmlToSections(document.body ?? document);
  if (builder.isEmpty && article) ({ builder, firstHeading } = htmlToSections(document.body ?? document));
  if (builder.isEmpty) throw badInput('the HTML page contains no readable text');
  return builder.build({ format: 'HTML', detectedType: 'text/html', title: article?.title?.trim() || pageTitle || firstHeading });
};
