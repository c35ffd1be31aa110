import fs from 'node:fs/promises';
import path from 'node:path';
import { blobKeys } from '../lib/blob/store';
import { acceptanceTime } from '../lib/clock';
import { formatOfFile, importRoot, realImportPath, resolveImportPath, signatureProblem } from '../lib/backfill/import-sources';
import { INGEST_REVISION } from '../lib/domain/ingest-revision';
import { FORMAT_SIZE_LIMITS, IngestRequest, type DocumentType } from '../lib/domain/ingest';
import { badInput } from '../lib/errors';
import { ingestWorkflowId, sourceId as deriveSourceId } from '../lib/ids';
import type { IngestWorkflowInput } from '../workflows/ingest';
import type { ActivityDeps } from './deps';
import { getDocument } from '../lib/elasticsearch/client';
import { deleteMatching } from '../lib/elasticsearch/matching-writes';
import { requestOfRecord, type StoredSource } from '../lib/source-records';
import type { IngestJobTags } from '../lib/temporal/search-attributes';

/** Everything the backfill workflow needs to run one ingest job as a child workflow. */
export interface ChildIngest {
  workflowId: string;
  input: IngestWorkflowInput;
  attributes: IngestJobTags;
  memo: Record<string, unknown>;
}

export type PreparedIngest =
  /** `supersedes`: the job whose memories a re-extraction replaces (the only one the source had), null for none. */
  | { child: ChildIngest; skipped?: undefined; supersedes?: string | null }
  | { child?: undefined; skipped: string };

/**
 * Re-extract and import both turn an item into an ordinary ingest job (child workflow), so the same
 * pipeline, retries and job status serve them; these activities prepare those jobs.
 */
export function createBackfillIngestActivities(deps: ActivityDeps) {
  /** `versionAt`: the version re-extracted, or `'new'` for an import (a new version of its file or URL, as of now). */
  function child(request: IngestRequest, jobId: string, sourceId: string, acceptedAt?: string, versionAt?: string | 'new'): ChildIngest {
    const createdAt = acceptanceTime();
    return {
      workflowId: ingestWorkflowId(request.tenant, jobId),
      input: {
        jobId,
        sourceId,
        request,
        batchSize: deps.config.BATCH_SIZE,
        batchConcurrency: deps.config.BATCH_CONCURRENCY,
        createdAt,
        acceptedAt,
        versionAt: versionAt === 'new' ? createdAt : versionAt,
        revision: INGEST_REVISION,
      },
      attributes: { tenant: request.tenant, kind: request.kind, format: request.format, documentType: request.documentType, surface: request.surface },
      memo: {
        surface: request.surface,
        scope: request.scope,
        source_id: sourceId,
        source_url: request.sourceUrl,
        document_id: request.documentId,
        file_name: request.fileName,
      },
    };
  }

  /** A stored source → a new ingest job over its stored content, or the reason it cannot be re-extracted. */
  async function prepareReextract(tenant: string, sourceId: string, jobId: string): Promise<PreparedIngest> {
    // Not there (or not the tenant's) is a skip; Elasticsearch not answering is thrown, for a retry.
    const source = (await getDocument<StoredSource>(deps.es, { index: deps.indices.sources, id: sourceId }, tenant))?.source;
    if (!source) return { skipped: 'the source no longer exists' };
    // A conversation kept by the ledger (sent again under its id) is what its last send said, which no
    // one upload holds: its first upload may carry text since edited away.
    if (source.turn_hashes) return { skipped: 'a conversation updated by re-sends (its id): re-send it instead' };
    // A source built up by several jobs (appended conversation turns) has no single upload holding all
    // of it: re-extracting the last upload would drop the earlier turns' memories.
    const jobs = await deps.es.search({
      index: deps.indices.memories,
      size: 0,
      // An edited memory kept from an earlier version is the user's, not a part of the content.
      query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }], must_not: [{ exists: { field: 'updated_at' } }] } },
      aggs: { jobs: { terms: { field: 'provenance.job_id', size: 2 } }, count: { cardinality: { field: 'provenance.job_id' } } },
    });
    const jobIds = ((jobs.aggregations?.jobs as { buckets?: { key: string }[] } | undefined)?.buckets ?? []).map((bucket) => bucket.key);
    const jobCount = (jobs.aggregations?.count as { value?: number } | undefined)?.value ?? jobIds.length;
    if (jobIds.length > 1) return { skipped: `its memories come from ${jobCount} jobs (appended content); re-send it instead` };
    if (source.blob_key && !(await deps.blobs.exists(source.blob_key))) return { skipped: 'its stored content is gone from the blob store' };
    if (!source.blob_key && !source.source_url) return { skipped: 'no stored content or URL to extract from' };
    const parsed = requestOfRecord(tenant, source, 'backfill');
    // A record that no longer reads as a request is skipped with the reason (retrying would not change it).
    if (!parsed.success) return { skipped: `its stored record cannot be read as a request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    const request = parsed.data;
    // Relative dates count from when the source was first accepted, as they did then — for a replaceable
    // source, when its current version was; the re-extraction is of that version.
    const acceptedAt = source.version_at ?? source.accepted_at ?? source.created_at;
    return { child: child(request, jobId, sourceId, acceptedAt, source.version_at), supersedes: jobIds[0] ?? null };
  }

  /**
   * After a source's re-extraction: memories of the source that the new job did not write again are
   * the old extractor's and go — only those of the job it superseded, so a job that wrote to the same
   * source meanwhile (a re-send with more turns) keeps its own. Without delete_by_query (not in this
   * Elasticsearch), search + bulk delete. (`supersedes` null: the source had no memories, none go;
   * absent: a backfill started before it was recorded, which drops every other job's.)
   */
  async function dropSupersededMemories(tenant: string, sourceId: string, keepJobId: string, supersedes?: string | null): Promise<number> {
    if (supersedes === null) return 0;
    const query = {
      bool: {
        filter: [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }, ...(supersedes ? [{ term: { 'provenance.job_id': supersedes } }] : [])],
        // An edited memory is the user's: a re-extraction does not take it away.
        must_not: [{ term: { 'provenance.job_id': keepJobId } }, { exists: { field: 'updated_at' } }],
      },
    };
    // Conditional deletes: a memory rewritten since the search (a new version of the source wrote the
    // same id) is no longer the superseded job's, and stays.
    return deleteMatching(deps.es, deps.indices.memories, query, 'superseded memories');
  }

  /** One import item (`url:<url>` or `file:<path>`) → an ingest job; file bytes go to the blob store first. */
  async function prepareImport(tenant: string, item: string, jobId: string, documentType?: DocumentType): Promise<PreparedIngest> {
    if (item.startsWith('url:')) {
      const url = item.slice(4);
      const request = IngestRequest.parse({ tenant, kind: 'url', format: 'URL', documentType, sourceUrl: url, surface: 'backfill' });
      return { child: child(request, jobId, deriveSourceId(tenant, `url:${url}`), undefined, 'new') };
    }
    if (!item.startsWith('file:')) throw badInput(`unknown import item ${item}`);
    const relative = item.slice(5);
    const format = formatOfFile(relative);
    if (!format) return { skipped: `${relative}: not a supported file type` };
    const root = importRoot(deps.config.CAIRN_DATA_DIR, tenant);
    const stat = await fs.stat(resolveImportPath(root, relative)).catch(() => undefined);
    if (!stat?.isFile()) return { skipped: `${relative}: the file is gone` };
    // A link is followed only inside the tenant's import root: one to another tenant's files is not theirs to import.
    const file = await realImportPath(root, relative);
    if (!file) return { skipped: `${relative}: a link leading outside the import folder` };
    if (stat.size > FORMAT_SIZE_LIMITS[format]) return { skipped: `${relative}: ${stat.size} bytes is over the ${format} limit of ${FORMAT_SIZE_LIMITS[format]}` };
    const bytes = await fs.readFile(file);
    const wrong = signatureProblem(format, bytes);
    if (wrong) return { skipped: `${relative}: ${wrong}` };
    const blobKey = blobKeys.upload(tenant, jobId);
    await deps.blobs.put(blobKey, bytes);
    const request = IngestRequest.parse({
      tenant,
      kind: 'file',
      format,
      documentType: documentType ?? (format === 'PDF' ? 'pdf' : 'document'),
      title: path.basename(relative),
      fileName: path.basename(relative),
      blobKey,
      surface: 'backfill',
    });
    // The path is the source's identity: importing the folder again updates, never duplicates — a file
    // that changed is a new version of its source, which replaces the old one's memories.
    return { child: child(request, jobId, deriveSourceId(tenant, `import:${relative}`), undefined, 'new') };
  }

  return { prepareReextract, dropSupersededMemories, prepareImport };
}
