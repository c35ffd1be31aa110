import fs from 'node:fs/promises';
import path from 'node:path';
import { badInput } from '../errors';

/**
 * Raw uploads and intermediate artifacts, passed between activities by key so Temporal payloads stay
 * small. The local folder is the default; an S3-compatible bucket implements the same interface.
 */
export interface BlobStore {
  /** Writes a blob; it is readable and on stable storage when this resolves. */
  put(key: string, data: Uint8Array | string): Promise<void>;
  /**
   * Writes a blob that readers see as soon as this resolves; `durable` settles once it is on stable
   * storage (at once for a store whose writes are durable when visible, as an S3 PUT is). Until then
   * a power cut may lose it. A caller overlaps the flush with other work and acknowledges only after
   * both: the API starts a fresh job's workflow while its upload is flushed.
   */
  write(key: string, data: Uint8Array | string): Promise<{ durable: Promise<void> }>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  size(key: string): Promise<number>;
  /** When the blob was last written; undefined when absent. */
  modifiedAt(key: string): Promise<Date | undefined>;
  delete(key: string): Promise<void>;
  /** Keys directly under a folder key (`<tenant>/jobs/<job>`), in no particular order; none when absent. */
  list(folder: string): Promise<string[]>;
}

export async function getJson<T>(store: BlobStore, key: string): Promise<T> {
  return JSON.parse((await store.get(key)).toString('utf8')) as T;
}

export async function putJson(store: BlobStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value));
}

export class LocalBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  private resolve(key: string): string {
    // Keys are built by Cairn, but a key must still never escape the store's root.
    if (!/^[A-Za-z0-9._\-/]+$/.test(key) || key.split('/').includes('..')) throw badInput(`invalid blob key ${key}`);
    return path.join(this.root, key);
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    await (await this.writeFile(key, data, true)).durable;
  }

  /**
   * Renamed into place before its data is flushed: after a power cut before `durable` settles, the
   * blob may be missing or empty (a crash of the process alone loses nothing). `put` flushes first.
   */
  async write(key: string, data: Uint8Array | string): Promise<{ durable: Promise<void> }> {
    return this.writeFile(key, data, false);
  }

  private async writeFile(key: string, data: Uint8Array | string, flushBeforeRename: boolean): Promise<{ durable: Promise<void> }> {
    const file = this.resolve(key);
    const folder = path.dirname(file);
    const created = await fs.mkdir(folder, { recursive: true });
    // Write-then-rename: a reader never sees half a blob, and a retried write is harmless.
    const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
    let handle: fs.FileHandle | undefined;
    let flushed = false;
    try {
      handle = await fs.open(temp, 'w');
      await handle.writeFile(data);
      if (flushBeforeRename) {
        await handle.sync();
        flushed = true;
      }
      await fs.rename(temp, file);
    } catch (error) {
      // A write that failed part way (disk full) leaves no half file behind.
      await handle?.close().catch(() => undefined);
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
    const written = handle;
    // The data (through the descriptor, which the rename did not change) and the folder entries are
    // flushed: a blob answered for survives a power cut, not only a crash of the process. Under a
    // busy disk these flushes wait for the file system's journal (p99 ~20 ms beside Elasticsearch),
    // which is why a caller may overlap them with other work (write).
    // Folders made for this blob (a new job's) are entries in their parents: flushed the same way, up
    // to the one that already existed.
    const folders = [folder];
    if (created) {
      for (let dir = path.dirname(folder); ; dir = path.dirname(dir)) {
        folders.push(dir);
        if (dir === path.dirname(created) || dir === path.dirname(dir)) break;
      }
    }
    // All at once: the rename is done, so the order of the flushes does not matter, and concurrent
    // flushes wait for the same journal commit instead of one commit each.
    const durable = (async () => {
      try {
        await Promise.all([flushed ? undefined : written.sync(), ...folders.map(syncFolder)]);
      } finally {
        await written.close();
      }
    })();
    // The caller awaits `durable`; this only keeps a failure it has not reached yet from counting as
    // an unhandled rejection meanwhile.
    durable.catch(() => undefined);
    return { durable };
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.resolve(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw badInput(`blob ${key} does not exist`);
      throw error;
    }
  }

  async exists(key: string): Promise<boolean> {
    return fs
      .access(this.resolve(key))
      .then(() => true)
      .catch(() => false);
  }

  async size(key: string): Promise<number> {
    return (await fs.stat(this.resolve(key))).size;
  }

  async modifiedAt(key: string): Promise<Date | undefined> {
    const stats = await fs.stat(this.resolve(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    return stats?.mtime;
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.resolve(key), { force: true });
  }

  async list(folder: string): Promise<string[]> {
    const entries = await fs.readdir(this.resolve(folder), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    return entries.filter((entry) => entry.isFile() && !entry.name.endsWith('.tmp')).map((entry) => `${folder}/${entry.name}`);
  }
}

/** Flushes a folder's entries (files created, renamed or removed in it) to stable storage. */
export async function syncFolder(folder: string): Promise<void> {
  const handle = await fs.open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Blob keys of one job's artifacts. */
export const blobKeys = {
  folder: (tenant: string, jobId: string) => `${tenant}/jobs/${jobId}`,
  upload: (tenant: string, jobId: string) => `${tenant}/jobs/${jobId}/raw`,
  fetched: (tenant: string, jobId: string) => `${tenant}/jobs/${jobId}/fetched`,
  parsed: (tenant: string, jobId: string) => `${tenant}/jobs/${jobId}/parsed.json`,
  chunks: (tenant: string, jobId: string) => `${tenant}/jobs/${jobId}/chunks.json`,
  extracted: (tenant: string, jobId: string, batch: number) => `${tenant}/jobs/${jobId}/memories-${batch}.json`,
  resolved: (tenant: string, jobId: string, batch: number) => `${tenant}/jobs/${jobId}/resolved-${batch}.json`,
};

/**
 * What a job derived on its way (the parsed document, chunks, extracted and resolved batches): needed
 * only while it runs. Its input (`raw`, `fetched`, a Tex write's `passive-turns.json`) is kept: a retry
 * and a re-extract backfill start again from it.
 */
export const isDerivedArtifact = (key: string) => /\/(parsed|chunks|chunks-\d+|memories-\d+|resolved-\d+)\.json$/.test(key);

/**
 * Deletes a job's blobs, those `which` keeps (all by default: its source is deleted); idempotent, a
 * retried call finds fewer or none. Answers how many it deleted.
 */
export async function dropJobBlobs(store: BlobStore, tenant: string, jobId: string, which: (key: string) => boolean = () => true): Promise<number> {
  const keys = (await store.list(blobKeys.folder(tenant, jobId))).filter(which);
  await Promise.all(keys.map((key) => store.delete(key)));
  return keys.length;
}

/** Deletes a finished job's derived artifacts (idempotent: a retried call finds fewer or none). */
export const dropDerivedArtifacts = (store: BlobStore, tenant: string, jobId: string): Promise<number> => dropJobBlobs(store, tenant, jobId, isDerivedArtifact);
