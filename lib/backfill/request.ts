import { z } from 'zod';
import { DocumentType } from '../domain/ingest';

/**
 * What a backfill is asked to do, as the API receives it (snake_case wire shape) and as the workflow
 * carries it (camelCase input). One schema is the source of truth for validation and types.
 */
export const BACKFILL_KINDS = ['reembed', 'reextract', 'reindex', 'import'] as const;
export const BackfillKind = z.enum(BACKFILL_KINDS);
export type BackfillKind = z.infer<typeof BackfillKind>;

/** The URLs one import may carry, in characters (about 64 URLs of the longest kind, or 1,000 of 256). */
const MAX_IMPORT_URL_CHARS = 256 * 1024;

const BackfillFields = z.object({
  backfill: BackfillKind,
  /** Memories (or sources) per activity, and how many such activities run at once. */
  batch_size: z.number().int().min(1).max(500).default(50),
  concurrency: z.number().int().min(1).max(16).default(4),
  /** Items read per Elasticsearch page; a page is split into batches. */
  page_size: z.number().int().min(1).max(2000).default(500),
  /** Pages per workflow run before continue-as-new keeps the history small. */
  pages_per_run: z.number().int().min(1).max(200).default(20),
  /** import: public http(s) URLs to ingest (the fetch stage still refuses private addresses). */
  urls: z
    .array(z.url({ protocol: /^https?$/ }).max(4096))
    .min(1)
    .max(1000)
    // They travel in the backfill's workflow input, which Temporal bounds (2 MB a payload).
    .refine((urls) => urls.reduce((sum, url) => sum + url.length, 0) <= MAX_IMPORT_URL_CHARS, `at most ${MAX_IMPORT_URL_CHARS / 1024} KB of URLs in one import: split it into several`)
    .optional(),
  /** import: a folder relative to the worker's import root for this tenant (<data dir>/imports/<tenant>). */
  folder: z
    .string()
    .min(1)
    .max(1024)
    .refine((value) => !value.split(/[\\/]/).includes('..') && !value.startsWith('/'), 'must be a relative path inside the import root')
    // eslint-disable-next-line no-control-regex
    .refine((value) => !/[\u0000-\u001f]/.test(value), 'must not contain control characters')
    .optional(),
  document_type: DocumentType.optional(),
})
  // A field it does not know is refused (400 naming it), as native ingest bodies are: a misspelt
  // "batchsize" or a "source_ids" it cannot honour would otherwise run a backfill other than the one asked.
  .strict();

function checkSources(value: { backfill: BackfillKind; urls?: string[]; folder?: string }, ctx: z.RefinementCtx) {
  const hasSources = Boolean(value.urls?.length || value.folder);
  if (value.backfill === 'import' && !hasSources) {
    ctx.addIssue({ code: 'custom', path: ['urls'], message: 'an import needs "urls" or "folder"' });
  }
  if (value.backfill !== 'import' && hasSources) {
    ctx.addIssue({ code: 'custom', path: ['backfill'], message: '"urls" and "folder" only apply to an import' });
  }
}

export const BackfillRequest = BackfillFields.superRefine(checkSources);
export type BackfillRequest = z.infer<typeof BackfillRequest>;

/** Temporal interval strings we accept: a number and a unit, at least a minute apart. */
const MINUTES_PER_UNIT = { m: 1, h: 60, d: 1440 } as const;
const Interval = z
  .string()
  .regex(/^\d+(m|h|d)$/, 'must look like 30m, 24h or 7d')
  .refine((value) => Number.parseInt(value, 10) > 0, 'must be positive')
  // A year at most: longer is a schedule that never comes round (Temporal has no next run to show).
  .refine((value) => !(value.at(-1)! in MINUTES_PER_UNIT) || Number.parseInt(value, 10) * MINUTES_PER_UNIT[value.at(-1) as keyof typeof MINUTES_PER_UNIT] <= 525_600, 'must be at most a year (365d)');

export const ScheduleRequest = BackfillFields.extend({
  every: Interval.optional(),
  cron: z
    .string()
    .min(6)
    .max(255)
    // Five fields (minute hour day month weekday) or a named period: no seconds field and no "@every",
    // which would slip under the minute that `every` keeps schedules apart by.
    .regex(/^((CRON_)?TZ=\S+\s+)?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$/, 'a five-field cron expression (minute hour day month weekday) or @hourly, @daily, @weekly, @monthly, @yearly; for an interval use "every"')
    .optional(),
  paused: z.boolean().default(false),
  note: z.string().max(500).optional(),
})
  .superRefine(checkSources)
  .superRefine((value, ctx) => {
    if (Boolean(value.every) === Boolean(value.cron)) {
      ctx.addIssue({ code: 'custom', path: ['every'], message: 'give exactly one of "every" (e.g. "24h") or "cron"' });
    }
  });
export type ScheduleRequest = z.infer<typeof ScheduleRequest>;

export interface ImportSpec {
  urls?: string[];
  folder?: string;
  documentType?: DocumentType;
}

/** The backfill workflow's input; `carried` is only set by continue-as-new. */
export interface BackfillWorkflowInput {
  tenant: string;
  kind: BackfillKind;
  batchSize: number;
  concurrency: number;
  pageSize: number;
  pagesPerRun: number;
  importSpec?: ImportSpec;
  carried?: BackfillCarried;
}

export function toWorkflowInput(tenant: string, request: BackfillRequest): BackfillWorkflowInput {
  return {
    tenant,
    kind: request.backfill,
    batchSize: request.batch_size,
    concurrency: request.concurrency,
    pageSize: request.page_size,
    pagesPerRun: request.pages_per_run,
    importSpec:
      request.backfill === 'import' ? { urls: request.urls, folder: request.folder, documentType: request.document_type } : undefined,
  };
}

export type SortValue = string | number | boolean | null;

/** Where a walk over Elasticsearch (or an import list) stands; small enough to carry in workflow state. */
export interface ScanTarget {
  of: 'memories' | 'sources' | 'list';
  /** memories/sources: the index or alias to walk (a concrete index pins a reindex to its source). */
  index?: string;
  /** Only this tenant's documents; unset walks every tenant (reindex). */
  tenant?: string;
  /** list: blob key of the JSON array of items. */
  listKey?: string;
}

export interface ScanState {
  target: ScanTarget;
  pitId?: string;
  searchAfter?: SortValue[];
  offset?: number;
  total: number;
  done: boolean;
}

export interface ReindexPlan {
  alias: string;
  source: string;
  target: string;
  /** Writes after this instant are copied again after the alias swap. */
  startedAt: string;
  /** The entities index moves with the memories (it holds vectors too); absent in plans made before it did. */
  entities?: { alias: string; source: string; target: string };
}

export const BACKFILL_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;
export const BackfillStatus = z.enum(BACKFILL_STATUSES);
export type BackfillStatus = z.infer<typeof BackfillStatus>;

export const BackfillError = z.object({ item: z.string(), message: z.string() });
export type BackfillError = z.infer<typeof BackfillError>;

/** What the `backfillProgress` query answers, across continue-as-new runs (and `GET /v1/backfills/:id`). */
export const BackfillProgress = z.object({
  run_id: z.string(),
  kind: BackfillKind,
  tenant: z.string(),
  status: BackfillStatus,
  phase: z.enum(['scanning', 'processing', 'swapping', 'finishing', 'done']),
  total: z.number().int(),
  /** Items handed to a batch so far, and of those: done, already done in this run, skipped, failed. */
  scanned: z.number().int(),
  processed: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  pages: z.number().int(),
  /** Workflow runs so far: 1 + the number of continue-as-new hand-overs. */
  runs: z.number().int(),
  errors: z.array(BackfillError),
  reindex: z
    .object({
      source: z.string(),
      target: z.string(),
      swapped: z.boolean(),
      /** Memories written to the old index during the run, copied after the swap. */
      caught_up: z.number().int().optional(),
      /** Memories deleted from the old index during the run after they were copied: removed again. */
      dropped: z.number().int().optional(),
      entities: z
        .object({ source: z.string(), target: z.string(), copied: z.number().int().optional(), caught_up: z.number().int().optional() })
        .optional(),
      /**
       * Indices this backfill deleted: after a swap, the versions before the one it left (that one stays,
       * a way back); stopped before its swap, the half-filled next versions.
       */
      removed: z.array(z.string()).optional(),
    })
    .optional(),
  started_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().optional(),
});
export type BackfillProgress = z.infer<typeof BackfillProgress>;

export interface BackfillCarried {
  runId: string;
  progress: BackfillProgress;
  scan?: ScanState;
  reindex?: ReindexPlan;
}

export { MAX_KEPT_ERRORS } from './limits';
