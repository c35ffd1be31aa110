import { z } from 'zod';

export const STAGES = ['fetch', 'parse', 'chunk', 'extract', 'resolve-entities', 'index'] as const;
export const Stage = z.enum(STAGES);
export type Stage = z.infer<typeof Stage>;

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);
/** Whether a job with this status has ended (nothing more will run). */
export const isFinalStatus = (status: JobStatus): boolean => FINAL_STATUSES.has(status);

export const StageState = z.enum(['pending', 'running', 'completed', 'failed', 'skipped']);
export type StageState = z.infer<typeof StageState>;

export const StageProgress = z.object({
  state: StageState,
  started_at: z.string().optional(),
  finished_at: z.string().optional(),
  duration_ms: z.number().optional(),
  /** What the stage produced: bytes fetched, characters parsed, chunks, memories, entities, documents. */
  count: z.number().optional(),
  attempts: z.number().optional(),
});
export type StageProgress = z.infer<typeof StageProgress>;

export const JobError = z.object({ stage: z.string(), code: z.string(), message: z.string() });
export type JobError = z.infer<typeof JobError>;

/** The state an ingest workflow keeps and answers the status query with. */
export const JobProgress = z.object({
  job_id: z.string(),
  tenant: z.string(),
  status: JobStatus,
  stage: Stage.nullable(),
  stages: z.record(Stage, StageProgress),
  counts: z.object({
    bytes: z.number(),
    characters: z.number(),
    chunks: z.number(),
    memories: z.number(),
    entities: z.number(),
  }),
  memories_created: z.number(),
  errors: z.array(JobError),
  source_id: z.string(),
  kind: z.string(),
  format: z.string(),
  document_type: z.string(),
  document_id: z.string().optional(),
  surface: z.string(),
  source_url: z.string().optional(),
  scope: z.record(z.string(), z.unknown()),
  categories: z.array(z.string()).optional(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().optional(),
  /**
   * A job that has not moved for a while: the stages Temporal is retrying, with their last failure
   * (a model or Elasticsearch down, a model change awaiting its reindex). Read from the workflow's
   * pending activities, never stored.
   */
  retrying: z
    .array(z.object({ activity: z.string(), attempt: z.number().int(), last_failure: z.string(), next_attempt_at: z.string().optional() }))
    .optional(),
});
export type JobProgress = z.infer<typeof JobProgress>;

/** Completed with part of the content left out (ingest revision 3): its errors name what. */
export const isPartlyCompleted = (progress: { status?: string; errors?: unknown[] } | undefined) =>
  progress?.status === 'completed' && (progress.errors?.length ?? 0) > 0;

/** When a job's first stage started and, once it has ended, when it ended (null until then). */
export function jobTimes(progress: Pick<JobProgress, 'stages' | 'status' | 'finished_at' | 'updated_at'>): { started_at: string | null; completed_at: string | null } {
  const started = Object.values(progress.stages).flatMap((stage) => (stage?.started_at ? [stage.started_at] : [])).sort()[0];
  return { started_at: started ?? null, completed_at: isFinalStatus(progress.status) ? (progress.finished_at ?? progress.updated_at) : null };
}

/** A job's errors in one line ("stage: message; …"), null when it has none. */
export const errorLine = (errors: { stage: string; message: string }[]) => (errors.length > 0 ? errors.map((error) => `${error.stage}: ${error.message}`).join('; ') : null);
