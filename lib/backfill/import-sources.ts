import fs from 'node:fs/promises';
import path from 'node:path';
import type { Format } from '../domain/ingest';
import { badInput } from '../errors';

/** File formats an import picks up from a folder, by extension; anything else is left alone. */
export const IMPORT_FORMATS: Record<string, Exclude<Format, 'URL' | 'CONVERSATION'>> = {
  '.txt': 'TXT',
  '.text': 'TXT',
  '.md': 'MARKDOWN',
  '.markdown': 'MARKDOWN',
  '.html': 'HTML',
  '.htm': 'HTML',
  '.json': 'JSON',
  '.csv': 'CSV',
  '.pdf': 'PDF',
  '.docx': 'DOCX',
};

export const formatOfFile = (file: string) => IMPORT_FORMATS[path.extname(file).toLowerCase()];

/** Each tenant imports only from its own folder under the data directory, never from anywhere on disk. */
export const importRoot = (dataDir: string, tenant: string) => path.join(dataDir, 'imports', tenant);

export function resolveImportPath(root: string, relative: string): string {
  const resolved = path.resolve(root, relative);
  if (resolved !== root && !resolved.startsWith(root + path.sep)) throw badInput(`${relative} is outside the import folder`);
  return resolved;
}

/**
 * Where an import path really is, following links: undefined when that is outside the tenant's
 * import root (a link to another tenant's folder, or anywhere else on disk), or nowhere.
 */
export async function realImportPath(root: string, relative: string): Promise<string | undefined> {
  const [real, realRoot] = await Promise.all([fs.realpath(resolveImportPath(root, relative)).catch(() => undefined), fs.realpath(root).catch(() => root)]);
  return real && (real === realRoot || real.startsWith(realRoot + path.sep)) ? real : undefined;
}

/**
 * Every importable file under the folder, as paths relative to the tenant's import root, sorted. Links
 * to files are listed, and each is read only if it leads inside the root (prepareImport says why not);
 * a folder that leads outside is refused.
 */
export async function listImportFiles(root: string, folder: string): Promise<string[]> {
  const start = resolveImportPath(root, folder);
  const stat = await fs.stat(start).catch(() => undefined);
  // Named relative to the tenant's import root (<data dir>/imports/<tenant>): the server's paths stay private.
  if (!stat) throw badInput(`import folder "${folder}" does not exist in the tenant's import folder`);
  if (!(await realImportPath(root, folder))) throw badInput(`import folder "${folder}" is a link leading outside the tenant's import folder`);
  if (stat.isFile()) return formatOfFile(start) ? [path.relative(root, start)] : [];
  const entries = await fs.readdir(start, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && formatOfFile(entry.name))
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** A binary format's signature: a file named .pdf or .docx that does not start with it is not one. */
export function signatureProblem(format: string, head: Buffer): string | undefined {
  if (format === 'PDF' && head.subarray(0, 5).toString('latin1') !== '%PDF-') return 'it is named as a PDF but is not one';
  if (format === 'DOCX' && head.subarray(0, 2).toString('latin1') !== 'PK') return 'it is named as a DOCX but is not one (no ZIP)';
  return undefined;
}
