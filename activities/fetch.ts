import { blobKeys } from '../lib/blob/store';
import { MAX_UPLOAD_BYTES } from '../lib/domain/ingest';
import { badInput } from '../lib/errors';
import type { ActivityDeps } from './deps';
import type { FetchResult, StageInput } from './types';
import { fetchUrlSafely } from './fetch-url';
import { livenessHeartbeat } from './liveness';

/** Brings the raw bytes into the blob store: an upload is already there, a URL is fetched safely. */
export function createFetchActivity(deps: ActivityDeps) {
  return async function fetchSource({ jobId, request }: StageInput): Promise<FetchResult> {
    if (request.blobKey) {
      if (!(await deps.blobs.exists(request.blobKey))) throw badInput(`uploaded content ${request.blobKey} is missing`);
      return { blobKey: request.blobKey, bytes: await deps.blobs.size(request.blobKey), contentType: request.declaredContentType };
    }
    if (request.sourceUrl) {
      const heartbeat = livenessHeartbeat();
      const fetched = await fetchUrlSafely(request.sourceUrl, {
        maxBytes: MAX_UPLOAD_BYTES,
        timeoutMs: deps.config.URL_FETCH_TIMEOUT_MS,
        allowPrivateNetworks: deps.config.CAIRN_ALLOW_PRIVATE_URLS,
        onProgress: (bytes) => heartbeat({ bytes }),
      });
      const key = blobKeys.fetched(request.tenant, jobId);
      await deps.blobs.put(key, fetched.body);
      return { blobKey: key, bytes: fetched.body.length, contentType: fetched.contentType, finalUrl: fetched.finalUrl };
    }
    throw badInput('the ingest request has neither content nor a source URL');
  };
}
