import { getJson, putJson, type BlobStore } from '../lib/blob/store';
import type { Chunk } from '../lib/domain/document';
import type { ChunkResult } from './types';

/**
 * A job's chunks are stored in pages, so that a batch reads the page or two its range covers rather
 * than every chunk of the document. In one file, each batch of a large document (extraction and
 * indexing both) parsed all of its chunks: work that grew with the square of the document's size.
 */
export const CHUNK_PAGE = 256;

/** The key of one page: `chunks.json` → `chunks-<page>.json`. */
const pageKey = (chunksKey: string, page: number) => chunksKey.replace(/\.json$/, `-${page}.json`);

/**
 * Writes the chunks as pages beside `chunksKey`; answers what readers need to find them. The whole
 * list is also written once at `chunksKey` itself, as workers before pages read it: during a rolling
 * upgrade such a worker may run a later stage of a job this one chunked, and would otherwise find no
 * chunks and leave the batch out. (One write per job; drop it once no worker before pages is left.)
 */
export async function writeChunks(blobs: BlobStore, chunksKey: string, chunks: Chunk[], pageSize = CHUNK_PAGE): Promise<Pick<ChunkResult, 'chunksKey' | 'pageSize'>> {
  const pages = Array.from({ length: Math.ceil(chunks.length / pageSize) }, (_, page) => page);
  await Promise.all([
    putJson(blobs, chunksKey, chunks),
    ...pages.map((page) => putJson(blobs, pageKey(chunksKey, page), chunks.slice(page * pageSize, (page + 1) * pageSize))),
  ]);
  return { chunksKey, pageSize };
}

/**
 * Chunks `start` to `end` (exclusive) of a job, clipped to those it has: from the pages that hold
 * them, or, for a run chunked before pages (no `pageSize` in its result), from its one file.
 */
export async function readChunks(blobs: BlobStore, chunked: ChunkResult, start: number, end: number): Promise<Chunk[]> {
  const from = Math.max(0, start);
  const to = Math.min(chunked.chunks, end);
  if (from >= to) return [];
  if (!chunked.pageSize) return (await getJson<Chunk[]>(blobs, chunked.chunksKey)).slice(from, to);
  const size = chunked.pageSize;
  const first = Math.floor(from / size);
  const last = Math.floor((to - 1) / size);
  const pages = await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => getJson<Chunk[]>(blobs, pageKey(chunked.chunksKey, first + i))));
  return pages.flat().slice(from - first * size, to - first * size);
}
