import { parse } from 'csv-parse/sync';
import { badInput } from '../../lib/errors';
import { SectionBuilder } from './sections';
import { decodeText } from './text';
import type { Parser } from './types';

/**
 * CSV: the first row names the columns; every following row becomes one `row` section written as
 * "column: value" pairs, so a chunk of rows reads on its own without the header.
 */
export const parseCsv: Parser = async (bytes, context) => {
  const source = decodeText(bytes, 'The CSV content', { contentType: context.declaredContentType });
  let records: string[][];
  try {
    records = parse(source, { delimiter: sniffDelimiter(source), relax_column_count: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw badInput(`the CSV could not be parsed: ${(error as Error).message}`);
  }
  if (records.length === 0) throw badInput('the CSV file is empty');
  const [header, ...rows] = records;
  const builder = new SectionBuilder();
  for (const row of rows) {
    const pairs = row.map((value, i) => (value ? (header![i] ? `${header![i]}: ${value}` : value) : '')).filter(Boolean);
    builder.add(pairs.join(' | '), { unit: 'row', separator: '\n' });
  }
  if (builder.isEmpty) throw badInput('the CSV file has no data rows');
  return builder.build({ format: 'CSV', detectedType: 'text/csv' });
};

/** Comma unless the header line clearly uses semicolons or tabs (European exports, TSV). */
function sniffDelimiter(source: string): string {
  const end = source.indexOf('\n');
  const firstLine = end === -1 ? source : source.slice(0, end);
  const counts = [',', ';', '\t'].map((delimiter) => [delimiter, firstLine.split(delimiter).length - 1] as const);
  return counts.reduce((best, current) => (current[1] > best[1] ? current : best))[0];
}
