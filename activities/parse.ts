import { heartbeat } from '@temporalio/activity';
import { blobKeys, putJson } from '../lib/blob/store';
import { FORMAT_SIZE_LIMITS, type Format } from '../lib/domain/ingest';
import { badInput, payloadTooLarge } from '../lib/errors';
import type { ActivityDeps } from './deps';
import { parserFor } from './parsers';
import type { FetchResult, ParseResult, StageInput } from './types';

/** Raw bytes → text with structure (or conversation turns), written to the blob store. */
export function createParseActivity(deps: ActivityDeps) {
  return async function parseSource({ jobId, request }: StageInput, fetched: FetchResult): Promise<ParseResult> {
    const bytes = await deps.blobs.get(fetched.blobKey);
    const format: Format = request.format === 'URL' ? 'TXT' : request.format;
    const limit = FORMAT_SIZE_LIMITS[format];
    if (bytes.length > limit) throw payloadTooLarge(`${format} content is ${bytes.length} bytes, over the ${limit} byte limit`);
    heartbeat();
    const document = await parserFor(format)(bytes, {
      format,
      declaredContentType: fetched.contentType ?? request.declaredContentType,
      fileName: request.fileName,
      sourceUrl: request.sourceUrl,
    });
    if (!document.text.trim()) throw badInput('no text could be extracted from the content');
    const parsedKey = blobKeys.parsed(request.tenant, jobId);
    await putJson(deps.blobs, parsedKey, document);
    return { parsedKey, characters: document.text.length, detectedType: document.detectedType, title: document.title };
  };
}
