import { z } from 'zod';

// A source's wire shapes: the API's answers, the OpenAPI document's schemas and lib/sources.ts's types.

/** What a delete removed. */
export const Removed = z.object({
  memories_deleted: z.number().int(),
  /** Entities that only these sources mentioned. */
  entities_deleted: z.number().int(),
  /** Entities other sources mention too: they stay, no longer naming these. */
  entities_updated: z.number().int(),
  /** Jobs whose stored content (upload, fetched page, artifacts) was removed. */
  jobs_cleared: z.number().int(),
});
export type Removed = z.infer<typeof Removed>;

/** What `POST /v1/sources/delete` removed, and what it left. */
export const SourcesDeletionResponse = Removed.extend({
  sources_deleted: z.number().int(),
  /** Sources left as they are: a job of theirs is still queued or running. */
  refused: z.array(z.object({ source_id: z.string(), open_job_ids: z.array(z.string()) })),
  /** Sources the filters still match (the refused ones, and any past the bulk limit): send the request again. */
  remaining: z.number().int(),
});
export type SourcesDeletion = z.infer<typeof SourcesDeletionResponse>;

/** What `GET /v1/sources/:id` answers: what was sent and when, without the internal bookkeeping (lib/sources.ts builds it). */
export const SourceResponse = z.object({
  id: z.string(),
  kind: z.string().optional(),
  format: z.string().optional(),
  document_type: z.string().optional(),
  document_id: z.string().optional(),
  document_date: z.string().optional(),
  source_url: z.string().optional(),
  file_name: z.string().optional(),
  title: z.string().optional(),
  categories: z.array(z.string()).optional(),
  mode: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  scope: z.record(z.string(), z.unknown()).optional(),
  /** A conversation's turns stored so far. */
  turn_count: z.number().int().optional(),
  /** The newest completed version of a document sent again under its id (or a URL ingested again). */
  version_at: z.string().optional(),
  last_job_id: z.string().optional(),
  /** The memories the source has now (edited ones included). */
  memory_count: z.number().int(),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
});
export type PublicSource = z.infer<typeof SourceResponse>;

/** What `DELETE /v1/sources/:id` removed. */
export const SourceDeletionResponse = Removed.extend({ source_id: z.string() });
export type SourceDeletion = z.infer<typeof SourceDeletionResponse>;
