import { heartbeat } from '@temporalio/activity';
import { blobKeys, getJson, putJson } from '../lib/blob/store';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import type { ActivityDeps } from './deps';
import type { BatchRange, ChunkResult, ExtractResult, ParseResult, StageInput } from './types';

/** One batch of chunks → typed memories (with entity mentions and dates), written to the blob store. */
export function createExtractActivity(deps: ActivityDeps) {
  return async function extractMemories(
    { jobId, request }: StageInput,
    parsed: ParseResult,
    chunked: ChunkResult,
    range: BatchRange,
  ): Promise<ExtractResult> {
    const allChunks = await getJson<Chunk[]>(deps.blobs, chunked.chunksKey);
    const chunks = allChunks.slice(range.start, range.end);
    const document = await getJson<ParsedDocument>(deps.blobs, parsed.parsedKey);
    heartbeat(range);
    const extractor = deps.extractors[request.mode];
    const { memories, usage } = await extractor.extract(chunks, {
      documentType: request.documentType,
      mode: request.mode,
      referenceDate: document.sessionDate ?? request.documentDate,
      format: request.format,
    });
    if (request.format === 'CONVERSATION') {
      for (const memory of memories) memory.context ??= neighbourTurns(allChunks, memory.chunkIndex);
    }
    const memoriesKey = blobKeys.extracted(request.tenant, jobId, range.batch);
    await putJson(deps.blobs, memoriesKey, memories);
    return { memoriesKey, memories: memories.length, tokensIn: usage.tokensIn, tokensOut: usage.tokensOut };
  };
}

/** The turns just before and after a chunk (clipped), the context a reply needs to be found. */
export function neighbourTurns(chunks: Chunk[], index: number, maxChars = 400): string | undefined {
  const clip = (text: string | undefined) => (text && text.length > maxChars ? `${text.slice(0, maxChars)}…` : text);
  const context = [clip(chunks[index - 1]?.text), clip(chunks[index + 1]?.text)].filter(Boolean).join('\n');
  return context || undefined;
}
