import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readChunks, writeChunks } from '../activities/chunk-pages';
import { LocalBlobStore, isDerivedArtifact, putJson } from '../lib/blob/store';
import type { Chunk } from '../lib/domain/document';

/** A job's chunks in pages, read a batch's range at a time (activities/chunk-pages.ts), on the local blob store. */
describe('chunk pages', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-chunk-pages-'));
  const blobs = new LocalBlobStore(root);
  const chunks: Chunk[] = Array.from({ length: 23 }, (_, index) => ({ index, text: `chunk ${index}`, tokens: 2 }) as Chunk);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads any range from the pages that hold it, clipped to the chunks there are', async () => {
    const stored = await writeChunks(blobs, 'acme/jobs/j1/chunks.json', chunks, 5);
    expect(stored).toEqual({ chunksKey: 'acme/jobs/j1/chunks.json', pageSize: 5 });
    const keys = await blobs.list('acme/jobs/j1');
    // The pages, and the whole list once for workers that predate pages.
    expect(keys.sort()).toEqual(['acme/jobs/j1/chunks.json', ...[0, 1, 2, 3, 4].map((page) => `acme/jobs/j1/chunks-${page}.json`)].sort());
    expect((await readChunks(blobs, { chunksKey: 'acme/jobs/j1/chunks.json', chunks: chunks.length, tokens: 46 }, 0, 23)).length).toBe(23);
    expect(keys.every(isDerivedArtifact)).toBe(true);
    const chunked = { ...stored, chunks: chunks.length, tokens: 46 };
    for (const [start, end] of [[0, 5], [4, 11], [-1, 3], [9, 10], [20, 40], [0, 23], [22, 24], [23, 30]] as const) {
      const read = await readChunks(blobs, chunked, start, end);
      expect(read.map((chunk) => chunk.index)).toEqual(chunks.slice(Math.max(0, start), end).map((chunk) => chunk.index));
    }
  });

  it('reads a run chunked before pages from its one file', async () => {
    await putJson(blobs, 'acme/jobs/j0/chunks.json', chunks);
    const read = await readChunks(blobs, { chunksKey: 'acme/jobs/j0/chunks.json', chunks: chunks.length, tokens: 46 }, 7, 12);
    expect(read.map((chunk) => chunk.index)).toEqual([7, 8, 9, 10, 11]);
  });
});
