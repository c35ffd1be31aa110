import { badInput } from '../../lib/errors';
import { SectionBuilder } from './sections';
import { decodeText } from './text';
import type { Parser } from './types';
import { clipChars } from '../../lib/text/clip';

/**
 * JSON: an array of records becomes one `row` section per record; an object becomes one section per
 * top-level key (its heading). Values are flattened into "path: value" lines that read as text.
 */
export const parseJson: Parser = async (bytes, context) => {
  const source = decodeText(bytes, 'The JSON content', { contentType: context.declaredContentType });
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    throw badInput(`the JSON is not valid: ${(error as Error).message}`);
  }
  const builder = new SectionBuilder();
  if (Array.isArray(value)) {
    for (const item of value) builder.add(flatten(item).join('\n'), { unit: 'row', separator: '\n' });
  } else if (value && typeof value === 'object') {
    // Top-level scalars read as one header section; objects and record lists get their key as heading.
    const entries = Object.entries(value);
    const scalars = entries.filter(([, child]) => child === null || typeof child !== 'object' || isScalarList(child));
    builder.add(scalars.flatMap(([key, child]) => flatten(child, key)).join('\n'));
    for (const [key, child] of entries) {
      if (child === null || typeof child !== 'object' || isScalarList(child)) continue;
      if (Array.isArray(child)) child.forEach((item) => builder.add(flatten(item).join('\n'), { heading: key, unit: 'row', separator: '\n' }));
      else builder.add(flatten(child).join('\n'), { heading: key });
    }
  } else {
    builder.add(String(value ?? ''));
  }
  if (builder.isEmpty) throw badInput('the JSON document contains no text values');
  const title = value && typeof value === 'object' && !Array.isArray(value) ? stringField(value, ['title', 'name', 'subject']) : undefined;
  return builder.build({ format: 'JSON', detectedType: 'application/json', title });
};

const isScalarList = (value: unknown) => Array.isArray(value) && value.every((item) => item === null || typeof item !== 'object');

/** Deeper than this a document is a structure, not text (and recursion would run out of stack). */
const MAX_DEPTH = 64;

/** Leaf values as "a.b[0].c: value"; a bare scalar record item as its value. */
function flatten(value: unknown, path = '', depth = 0): string[] {
  if (value === null || value === undefined || value === '') return [];
  if (depth > MAX_DEPTH) throw badInput(`the JSON document is nested over ${MAX_DEPTH} levels deep`);
  if (Array.isArray(value)) {
    if (value.every((item) => item === null || typeof item !== 'object')) {
      const items = value.filter((item) => item !== null && item !== '').map(String);
      return items.length ? [path ? `${path}: ${items.join(', ')}` : items.join(', ')] : [];
    }
    return value.flatMap((item, i) => flatten(item, `${path}[${i}]`, depth + 1));
  }
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => flatten(child, path ? `${path}.${key}` : key, depth + 1));
  }
  return [path ? `${path}: ${String(value)}` : String(value)];
}

function stringField(value: object, keys: string[]): string | undefined {
  for (const key of keys) {
    const field = (value as Record<string, unknown>)[key];
    if (typeof field === 'string' && field.trim()) return clipChars(field.trim(), 1024);
  }
  return undefined;
}
