import { blobKeys, getJson } from '../lib/blob/store';
import { chunkConversation } from '../lib/chunking/chunk-conversation';
import { chunkSections } from '../lib/chunking/chunk-text';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import { badInput } from '../lib/errors';
import { writeChunks } from './chunk-pages';
import type { ActivityDeps } from './deps';
import { livenessHeartbeat } from './liveness';
import type { ChunkResult, ParseResult, StageInput } from './types';

/** Parsed text → token-bounded chunks with offsets (or turn ranges), written to the blob store. */
export function createChunkActivity(deps: ActivityDeps) {
  return async function chunkDocument({ jobId, request }: StageInput, parsed: ParseResult): Promise<ChunkResult> {
    const heartbeat = livenessHeartbeat();
    const document = await getJson<ParsedDocument>(deps.blobs, parsed.parsedKey);
    const maxTokens = deps.config.CHUNK_TOKENS;
    const chunks: Chunk[] = document.turns
      ? chunkConversation(document.turns, { maxTokens, maxTurns: deps.config.CONVERSATION_TURNS_PER_CHUNK })
      : await chunkSections(document.sections, {
          maxTokens,
          overlapTokens: deps.config.CHUNK_OVERLAP_TOKENS,
          onProgress: (count) => heartbeat({ chunks: count }),
        });
    if (chunks.length === 0) throw badInput('the content produced no chunks of text');
    const stored = await writeChunks(deps.blobs, blobKeys.chunks(request.tenant, jobId), chunks);
    return { ...stored, chunks: chunks.length, tokens: chunks.reduce((sum, chunk) => sum + chunk.tokens, 0) };
  };
}
