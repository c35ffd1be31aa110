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

/** Every importable file under the folder, as paths relative to the tenant's import root, sorted. */
export async function listImportFiles(root: string, folder: string): Promise<string[]> {
  const start = resolveImportPath(root, folder);
  const stat = await fs.stat(start).catch(() => undefined);
  // Named relative to the tenant's import root (<data dir>/imports/<tenant>): the server's paths stay private.
  if (!stat) throw badInput(`import folder "${folder}" does not exist in the tenant's import folder`);
  if (stat.isFile()) return formatOfFile(start) ? [path.relative(root, start)] : [];
  const entries = await fs.readdir(start, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && formatOfFile(entry.name))
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}
