import { randomBytes } from 'node:crypto';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { blobKeys, type BlobStore } from './blob/store';
import { acceptanceTime } from './clock';
import type { Config } from './config';
import { assertWithinFormatLimit, IngestRequest, type IngestRequestInput } from './domain/ingest';
import { INGEST_REVISION } from './domain/ingest-revision';
import { badInput } from './errors';
import { contentHash, ingestWorkflowId, newJobId, scopeKey, sourceId as deriveSourceId } from './ids';

export interface IngestContent {
  /** Raw bytes or text of the source; conversations are their normalised JSON. */
  content?: Uint8Array | string;
}

export interface StartOptions {
  /** A caller-derived job id (e.g. from a Synap document_id); random otherwise. */
  jobId?: string;
  sourceKey?: string;
  /**
   * An existing source this job is a new version of, whatever keyed it (supermemory's documents.update):
   * its memories replace the earlier versions' once it completes, as a document sent again under its id.
   */
  versionOf?: string;
  /** Refuse (409) when a job with this id exists and did not fail: Synap's duplicate document_id. */
  rejectDuplicate?: boolean;
  /** Which job this one retries, kept in the memo for listings. */
  retryOf?: string;
}

/** What listings show without a query per job: kept in the workflow memo at start. */
export interface JobMemo {
  surface: string;
  scope: IngestRequest['scope'];
  categories?: string[];
  source_url?: string;
  document_id?: string;
  file_name?: string;
  source_id: string;
  retry_of?: string;
  /** When the job was accepted (its created_at wherever it is read; visibility's start time is later). */
  created_at?: string;
  /** Set at the start of a job whose id a later send may run again (a caller-derived id): it may have several runs. */
  reused_id?: boolean;
}

/** What a job's workflow keeps in its memo; a job still being started is listed from the same fields. */
export function jobMemo(workflowInput: IngestWorkflowInput, retryOf?: string): JobMemo {
  const { request } = workflowInput;
  return {
    surface: request.surface,
    scope: request.scope,
    categories: request.categories,
    source_url: request.sourceUrl,
    document_id: request.documentId,
    file_name: request.fileName,
    source_id: workflowInput.sourceId,
    retry_of: retryOf,
    created_at: workflowInput.createdAt,
  };
}

export const byteLengthOf = (content: Uint8Array | string) => (typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength);

/**
 * Whether a source is replaced by what is sent again under the same key (see StageInput.versionAt):
 * a document under its id, a URL, and content keyed by its hash too — the same text re-sent is the
 * same memories, but two sends at once would otherwise each write over the other's memories and
 * record, and the earlier one finishing last would undo the later one's metadata.
 */
function replaceableSource(request: IngestRequest, sourceKey: string, callerSourceKey?: string): boolean {
  return !callerSourceKey && request.format !== 'CONVERSATION' && /^(doc|url|hash):/.test(sourceKey);
}

/** A request made into its job: the workflow's input, and where its upload stands. */
export interface PreparedJob {
  workflowInput: IngestWorkflowInput;
  workflowId: string;
  /** Settles once the upload written to the blob store is on stable storage (at once when nothing was written here). */
  durable: Promise<void>;
  /** A journaled job's upload, handed back unwritten. */
  upload?: { key: string; content: Buffer };
}

export interface PrepareDeps {
  config: Config;
  blobs: BlobStore;
  /** Told when the upload's write began and the promise of its flush (IngestJobs.timeStep). */
  timeUpload?: (writing: number, durable: Promise<void>) => void;
}

/**
 * Validates a request and makes it into its job: the job and source ids, the upload in the blob
 * store, the workflow input. Bad input is refused here (400), before anything is stored. With
 * `journaled`, the upload is not written: it is handed back, to be journaled (IngestJobs.startJournaled).
 */
export async function prepareJob(input: IngestRequestInput & IngestContent, options: StartOptions, deps: PrepareDeps, journaled = false): Promise<PreparedJob> {
  const { content, ...fields } = input;
  const parsed = IngestRequest.safeParse(fields);
  if (!parsed.success) throw badInput(`invalid ingest request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const request = parsed.data;
  const jobId = options.jobId ?? newJobId();
  if (content !== undefined && request.format !== 'URL') {
    // Refused now, not accepted and failed in the parse stage: the job would only say so later.
    assertWithinFormatLimit(request.format, byteLengthOf(content));
  }
  let durable = Promise.resolve();
  let upload: PreparedJob['upload'];
  if (content !== undefined) {
    // A caller-derived job id can be sent twice: each request gets its own blob, so a refused or
    // joined duplicate never overwrites the content a running job reads.
    const key = options.jobId ? `${blobKeys.upload(request.tenant, jobId)}-${randomBytes(6).toString('hex')}` : blobKeys.upload(request.tenant, jobId);
    if (journaled) {
      upload = { key, content: typeof content === 'string' ? Buffer.from(content) : Buffer.from(content.buffer, content.byteOffset, content.byteLength) };
    } else if (options.jobId) {
      // Flushed before the start: a caller that re-sends after a lost answer is told its job exists
      // (409) or joins it, so a run under a derived id must never exist without durable content.
      await deps.blobs.put(key, content);
    } else {
      // A fresh id: the flush runs beside the start (IngestJobs.whileFlushing). A re-send after a lost
      // answer is a new job, so a run whose content a power cut took fails alone, never answered 2xx.
      const writing = performance.now();
      ({ durable } = await deps.blobs.write(key, content));
      deps.timeUpload?.(writing, durable);
    }
    request.blobKey = key;
  }
  if (!request.blobKey && !request.sourceUrl) throw badInput('either content or a source URL is required');
  // A source is the caller's document id when given (unique in the tenant), else what was sent (the
  // URL when only a URL was, else the content's hash — a file kept with the URL it came from is its
  // content) where it was sent: the same text from two users or spaces is two sources, so
  // neither job rewrites the other's memories into its own scope.
  const scope = scopeKey(request.scope);
  const sourceKey =
    options.sourceKey ??
    (request.documentId
      ? `doc:${request.documentId}`
      : request.sourceUrl && content === undefined
        ? `url:${scope}${request.sourceUrl}`
        : `hash:${contentHash(content ?? '', scope)}`);
  const createdAt = acceptanceTime();
  const workflowInput: IngestWorkflowInput = {
    jobId,
    sourceId: options.versionOf ?? deriveSourceId(request.tenant, sourceKey),
    request,
    batchSize: deps.config.BATCH_SIZE,
    batchConcurrency: deps.config.BATCH_CONCURRENCY,
    createdAt,
    revision: INGEST_REVISION,
    // A document sent again under its id, a URL ingested again, the same content sent again: a new
    // version of the same source, whose memories replace the earlier version's. (A conversation
    // re-sent is not: surfaces differ on whether it adds turns or restates them, and supermemory's
    // keeps its own ledger.)
    versionAt: options.versionOf !== undefined || replaceableSource(request, sourceKey, options.sourceKey) ? createdAt : undefined,
  };
  return { workflowInput, workflowId: ingestWorkflowId(request.tenant, jobId), durable, upload };
}
