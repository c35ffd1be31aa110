import { blobKeys, getJson, putJson } from '../lib/blob/store';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import { clipTurn, embeddingText } from '../lib/domain/memory';
import { prefetchEmbeddings } from '../lib/models/embedding-prefetch';
import { readChunks } from './chunk-pages';
import type { ActivityDeps } from './deps';
import { livenessHeartbeat } from './liveness';
import { acceptedAtOf, type BatchRange, type ChunkResult, type ExtractResult, type ParseResult, type StageInput } from './types';

/** One batch of chunks → typed memories (with entity mentions and dates), written to the blob store. */
export function createExtractActivity(deps: ActivityDeps) {
  return async function extractMemories(
    input: StageInput,
    parsed: ParseResult,
    chunked: ChunkResult,
    range: BatchRange,
  ): Promise<ExtractResult> {
    const { jobId, request } = input;
    const heartbeat = livenessHeartbeat();
    // The batch's chunks, and the one on either side: a conversation turn's neighbours are its context.
    const window = await readChunks(deps.blobs, chunked, range.start - 1, range.end + 1);
    const offset = Math.max(0, range.start - 1);
    const chunks = window.slice(range.start - offset, range.end - offset);
    // The session date travels in the parse result; only older runs' results lack it and read the blob
    // (the whole parsed document, parsed again per batch, for one field).
    const sessionDate =
      parsed.sessionDate ?? (request.format === 'CONVERSATION' ? (await getJson<ParsedDocument>(deps.blobs, parsed.parsedKey)).sessionDate : undefined);
    heartbeat(range);
    const extractor = deps.extractors[request.mode];
    const contextOf = (chunkIndex: number) => (request.format === 'CONVERSATION' ? neighbourTurns(window, chunkIndex - offset) : undefined);
    // The embedding model starts on what indexing will embed as soon as it is known, and works while
    // the job waits and extracts and resolves entities; indexing takes the vectors. An extractor that
    // keeps each chunk's text tells it before it runs: a local extraction waits for its CPU turn behind
    // other jobs' parsing and extraction, and the model would idle meanwhile. Not while the index waits
    // for a reindex to another model: no wasted model calls.
    const prefetch = async (texts: string[]) => {
      if (deps.embedder && texts.length > 0 && !(await deps.embeddingMatch.mismatchOf('memories', { fresh: false }))) {
        prefetchEmbeddings(deps.embedder, texts);
      }
    };
    if (extractor.keepsChunkText) {
      const texts = chunks.filter((chunk) => chunk.text.trim().length > 0).map((chunk) => embeddingText({ text: chunk.text, context: contextOf(chunk.index) }));
      await prefetch(texts);
    }
    const extract = () =>
      extractor.extract(chunks, {
        documentType: request.documentType,
        mode: request.mode,
        // Without a session or document date, relative dates count from when the job was accepted (not
        // from whenever extraction runs or runs again).
        referenceDate: sessionDate ?? request.documentDate ?? acceptedAtOf(input),
        format: request.format,
      });
    // Local extraction takes its turn on the worker's CPU (lib/cpu-turns.ts); a remote model's calls overlap.
    const { memories, usage } = await (extractor.cpuBound ? deps.cpuTurns.run(extract, () => heartbeat(range)) : extract());
    if (request.format === 'CONVERSATION') {
      for (const memory of memories) memory.context ??= contextOf(memory.chunkIndex);
    }
    // Texts already prefetched above are not embedded again.
    await prefetch(memories.map(embeddingText));
    const memoriesKey = blobKeys.extracted(request.tenant, jobId, range.batch);
    await putJson(deps.blobs, memoriesKey, memories);
    return { memoriesKey, memories: memories.length, tokensIn: usage.tokensIn, tokensOut: usage.tokensOut };
  };
}

/** The turns just before and after a chunk (clipped), the context a reply needs to be found. */
export function neighbourTurns(chunks: Chunk[], index: number, maxChars = 400): string | undefined {
  const clip = (text: string | undefined) => (text ? clipTurn(text, maxChars) : text);
  const context = [clip(chunks[index - 1]?.text), clip(chunks[index + 1]?.text)].filter(Boolean).join('\n');
  return context || undefined;
}
