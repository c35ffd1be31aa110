import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { blobKeys, type BlobStore } from './blob/store';
import type { Config } from './config';
import { IngestRequest, type IngestRequestInput } from './domain/ingest';
import type { JobProgress } from './domain/job';
import { badInput, notFound } from './errors';
import { contentHash, ingestWorkflowId, newJobId, sourceId as deriveSourceId } from './ids';
import {
  DocumentTypeAttribute,
  FormatAttribute,
  JobKindAttribute,
  SourceKindAttribute,
  StatusAttribute,
  TenantAttribute,
} from './temporal/search-attributes';

export interface StartedJob {
  jobId: string;
  sourceId: string;
  workflowId: string;
  status: 'queued';
}

export interface IngestContent {
  /** Raw bytes or text of the source; conversations are their normalised JSON. */
  content?: Uint8Array | string;
}

/**
 * Starts one ingest job: the content is written to the blob store, then the workflow is started,
 * and only then does the caller answer 2xx — so anything accepted is durable.
 */
export class IngestJobs {
  constructor(
    private readonly temporal: Client,
    private readonly blobs: BlobStore,
    private readonly config: Config,
  ) {}

  async start(input: IngestRequestInput & IngestContent, options: { jobId?: string; sourceKey?: string } = {}): Promise<StartedJob> {
    const { content, ...fields } = input;
    const parsed = IngestRequest.safeParse(fields);
    if (!parsed.success) throw badInput(`invalid ingest request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const request = parsed.data;
    const jobId = options.jobId ?? newJobId();
    if (content !== undefined) {
      const key = blobKeys.upload(request.tenant, jobId);
      await this.blobs.put(key, content);
      request.blobKey = key;
    }
    if (!request.blobKey && !request.sourceUrl) throw badInput('either content or a source URL is required');
    // A source is the caller's document id when given, else what was sent (URL or content hash).
    const sourceKey =
      options.sourceKey ??
      (request.documentId ? `doc:${request.documentId}` : request.sourceUrl ? `url:${request.sourceUrl}` : `hash:${contentHash(content ?? '')}`);
    const sourceId = deriveSourceId(request.tenant, sourceKey);
    const workflowId = ingestWorkflowId(request.tenant, jobId);
    const workflowInput: IngestWorkflowInput = {
      jobId,
      sourceId,
      request,
      batchSize: this.config.BATCH_SIZE,
      batchConcurrency: this.config.BATCH_CONCURRENCY,
      createdAt: new Date().toISOString(),
    };
    await this.temporal.workflow.start('ingestWorkflow', {
      taskQueue: this.config.TEMPORAL_TASK_QUEUE,
      workflowId,
      args: [workflowInput],
      typedSearchAttributes: [
        { key: TenantAttribute, value: request.tenant },
        { key: SourceKindAttribute, value: request.kind },
        { key: FormatAttribute, value: request.format },
        { key: DocumentTypeAttribute, value: request.documentType },
        { key: StatusAttribute, value: 'queued' },
        { key: JobKindAttribute, value: 'ingest' },
      ],
      memo: { surface: request.surface },
    });
    return { jobId, sourceId, workflowId, status: 'queued' };
  }

  handle(tenant: string, jobId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(ingestWorkflowId(tenant, jobId));
  }

  /** Live progress from the workflow's query; undefined when Temporal no longer knows the job. */
  async progress(tenant: string, jobId: string): Promise<JobProgress | undefined> {
    try {
      return await this.handle(tenant, jobId).query<JobProgress>('status');
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      if ((error as { name?: string }).name === 'WorkflowNotFoundError') return undefined;
      throw error;
    }
  }

  async progressOrThrow(tenant: string, jobId: string): Promise<JobProgress> {
    const progress = await this.progress(tenant, jobId);
    if (!progress) throw notFound(`job ${jobId}`);
    return progress;
  }
}
