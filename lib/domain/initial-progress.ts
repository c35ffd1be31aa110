import type { IngestWorkflowInput } from '../../workflows/ingest';
import type { JobProgress, Stage } from './job';

/** Pipeline stages in order. Kept free of zod (type imports only): workflow code imports this module. */
export const STAGE_ORDER: Stage[] = ['fetch', 'parse', 'chunk', 'extract', 'resolve-entities', 'index'];

/**
 * The progress an ingest job starts with: the workflow's first state, and what the API reconstructs
 * from a job's input when a closed run left no summary (lib/job-status.ts).
 */
export function initialProgress(input: IngestWorkflowInput, now: string): JobProgress {
  const { request } = input;
  return {
    job_id: input.jobId,
    tenant: request.tenant,
    status: 'queued',
    stage: null,
    stages: Object.fromEntries(STAGE_ORDER.map((name) => [name, { state: 'pending' }])) as JobProgress['stages'],
    counts: { bytes: 0, characters: 0, chunks: 0, memories: 0, entities: 0 },
    memories_created: 0,
    errors: [],
    source_id: input.sourceId,
    kind: request.kind,
    format: request.format,
    document_type: request.documentType,
    document_id: request.documentId,
    surface: request.surface,
    source_url: request.sourceUrl,
    scope: { ...request.scope },
    categories: request.categories,
    created_at: input.createdAt,
    updated_at: now,
  };
}
