import { log } from '@temporalio/activity';
import { blobKeys, putJson } from '../lib/blob/store';
import { assertWithinFormatLimit } from '../lib/domain/ingest';
import { badInput, CairnError } from '../lib/errors';
import type { ActivityDeps } from './deps';
import { livenessHeartbeat } from './liveness';
import { detectFormat, parserFor } from './parsers';
import { isStackOverflow } from './parsers/types';
import type { FetchResult, ParseResult, StageInput } from './types';

/** Raw bytes → text with structure (or conversation turns), written to the blob store. */
export function createParseActivity(deps: ActivityDeps) {
  return async function parseSource({ jobId, request }: StageInput, fetched: FetchResult): Promise<ParseResult> {
    const heartbeat = livenessHeartbeat();
    const bytes = await deps.blobs.get(fetched.blobKey);
    const contentType = fetched.contentType ?? request.declaredContentType;
    const { format, note } = detectFormat(bytes, request.format, contentType);
    if (note) log.info('parsing content as its detected format', { jobId, declared: request.format, detected: format, note });
    // The stricter of the declared and the detected format's limit: a 15 MB "TXT" that is a PDF is still too big.
    if (request.format !== 'URL') assertWithinFormatLimit(request.format, bytes.length);
    assertWithinFormatLimit(format, bytes.length);
    heartbeat();
    const parse = () =>
      parserFor(format)(bytes, {
        format,
        declaredContentType: contentType,
        fileName: request.fileName,
        sourceUrl: request.sourceUrl,
        onProgress: (done) => heartbeat({ done }),
      });
    // Parsing takes its turn on the worker's CPU (lib/cpu-turns.ts).
    const document = await deps.cpuTurns.run(parse, () => heartbeat()).catch((error: unknown) => {
      // Parsers work on the bytes alone: whatever they throw (a stack overflow on pathological
      // nesting, a string too long to build) would throw again on every retry. The job fails saying so.
      // A system error (EMFILE, ENOMEM loading a parser) is the worker's, and worth a retry.
      if (error instanceof CairnError || /^E[A-Z]+$/.test(String((error as { code?: unknown })?.code))) throw error;
      if (isStackOverflow(error)) throw badInput(`the ${format} content is nested too deeply to read`);
      throw badInput(`the ${format} content could not be parsed: ${(error as Error)?.message ?? String(error)}`);
    });
    if (!document.text.trim()) throw badInput('no text could be extracted from the content');
    // Only control characters, symbols or markup ("# \n---"): nothing a memory could say.
    if (!/[\p{L}\p{N}\p{So}\p{Extended_Pictographic}\u20E3]/u.test(document.text)) throw badInput('the content has no readable text (no letters, digits, emoji or symbols)');
    const parsedKey = blobKeys.parsed(request.tenant, jobId);
    await putJson(deps.blobs, parsedKey, document);
    return {
      parsedKey,
      characters: document.text.length,
      detectedType: document.detectedType,
      detectedFormat: format,
      title: document.title,
      sessionDate: document.sessionDate,
      pages: document.pages,
    };
  };
}
