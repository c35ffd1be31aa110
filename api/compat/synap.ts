import type { Router } from 'express';
import { z } from 'zod';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { Iso8601Date } from '../../lib/domain/dates';
import { DocumentType, IngestMode, Metadata } from '../../lib/domain/ingest';
import { isFinalStatus, isPartlyCompleted, type JobProgress, type StageState } from '../../lib/domain/job';
import { EntityRef, MemoryType, type Memory } from '../../lib/domain/memory';
import type { IngestJobs } from '../../lib/jobs';
import { MemoryUpdate, type MemoryStore } from '../../lib/memories';
import { synapIngestions } from './synap-ingestions';
import { MergeStrategy } from '../../lib/memory-merge';
import { principalOf, requirePermission } from '../auth';
import { acceptBatch, BatchError, sendBatch } from '../batch';
import { idParam, parseWith } from '../errors';
import { compatSurface, nativeErrors, type SurfaceDeps } from './surface';

/**
 * Synap (seed 004). The seed names operations, not paths; Cairn serves them under /compat/synap as
 *   POST   /v1/memories             create        → 201 {ingestion_id, status: "queued"}, 409 duplicate document_id
 *   POST   /v1/memories/batch       batch create  → 201 {results, errors}, fail_fast
 *   GET    /v1/ingestions/:id       ingestion status
 *   GET    /v1/memories/:id         get memory (mem_<hex>)
 *   PATCH  /v1/memories/:id         update (merge_strategy); PUT is accepted too
 *   DELETE /v1/memories/:id         delete → 204
 */
/** An optional field the Python SDK sends as null when unset (pydantic's model_dump): null reads as absent. */
const unset = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

/** Why a scope ladder (the Python SDK's {customer, team, user}) is refused, wherever one is sent. */
export const SCOPE_LADDER_REFUSED = 'Cairn has no scope levels between customer and user: leave scope out and send user_id and customer_id';

export const SynapCreateMemory = z
  .object({
    /** Up to the TXT limit (5 MB): over it, 413 when the ingestion is started. */
    content: unset(z.string().min(1)),
    /** The Python SDK's name for the content: text, or an object (ingested as JSON). Give one of the two. */
    document: unset(z.union([z.string().min(1), z.record(z.string(), z.unknown())])),
    document_type: unset(DocumentType).transform((value) => value ?? 'document'),
    document_id: unset(z.string().min(1).max(512)),
    document_created_at: unset(Iso8601Date),
    user_id: unset(z.string().min(1).max(255)),
    customer_id: unset(z.string().min(1).max(255)),
    /**
     * The Python SDK's scope ladder ({customer, team, user}), for accounts with a level between
     * customer and user. Cairn's scope has no such level: one sent is refused, as the vendor refuses
     * it on an account without one, rather than read more widely than asked.
     */
    scope: z.unknown().optional(),
    mode: unset(IngestMode).transform((value) => value ?? 'long-range'),
    metadata: unset(Metadata),
  })
  .superRefine((body, context) => {
    if ((body.content === undefined) === (body.document === undefined)) {
      context.addIssue({ code: 'custom', path: ['content'], message: 'give the content as content or as document (one of the two)' });
    }
    if (body.scope !== undefined && body.scope !== null) {
      context.addIssue({ code: 'custom', path: ['scope'], message: SCOPE_LADDER_REFUSED });
    }
  })
  .transform(({ document, scope: _scope, ...body }) => ({
    ...body,
    content: body.content ?? (typeof document === 'string' ? document : JSON.stringify(document)),
    format: typeof document === 'object' ? ('JSON' as const) : ('TXT' as const),
  }));

export const SynapBatchCreate = z.object({
  // No limit in the seed ("the primary endpoint for bootstrap ingestion"): bounded by the JSON body limit and this count.
  documents: z.array(z.unknown()).min(1).max(1000),
  fail_fast: z.boolean().default(false),
});

export const SynapIngestionStatus = z.object({
  ingestion_id: z.string(),
  status: z.enum(['queued', 'processing', 'completed', 'failed', 'partial_success']),
  progress: z.record(z.string(), z.object({ status: z.enum(['queued', 'processing', 'completed', 'failed', 'skipped']), count: z.number().optional(), started_at: z.string().optional(), finished_at: z.string().optional() })),
  errors: z.array(z.object({ stage: z.string(), code: z.string(), message: z.string() })),
  memories_created: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
});

/**
 * A stage's state in the words of the ingestion's own status (queued, processing, …), so one
 * vocabulary reads the whole answer; a stage the job did not need, or never reached before it ended,
 * is skipped.
 */
const STAGE_STATES: Record<StageState, z.infer<typeof SynapIngestionStatus>['progress'][string]['status']> = {
  pending: 'queued',
  running: 'processing',
  completed: 'completed',
  failed: 'failed',
  skipped: 'skipped',
};

/** Synap's names for Cairn's stages. */
const STAGE_NAMES: Record<string, string> = {
  fetch: 'fetch',
  parse: 'parsing',
  chunk: 'chunking',
  extract: 'extraction',
  'resolve-entities': 'entity_resolution',
  index: 'storage',
};

export function ingestionStatus(progress: JobProgress): z.infer<typeof SynapIngestionStatus> {
  const status =
    progress.status === 'queued'
      ? 'queued'
      : progress.status === 'running'
        ? 'processing'
        : isPartlyCompleted(progress)
          ? 'partial_success'
          : progress.status === 'completed'
            ? 'completed'
            : 'failed';
  return {
    ingestion_id: progress.job_id,
    status,
    progress: Object.fromEntries(
      Object.entries(progress.stages).flatMap(([stage, state]) => {
        // A stage the ingestion ended without reaching did not run: skipped, not still queued.
        const stageState = state.state === 'pending' && isFinalStatus(progress.status) ? 'skipped' : state.state;
        const entry = { status: STAGE_STATES[stageState], count: state.count, started_at: state.started_at, finished_at: state.finished_at };
        // The seed names a categorization stage after extraction: the extractor types each memory as
        // it extracts it, so categorization is that same step, in the same state.
        return stage === 'extract' ? [[STAGE_NAMES[stage], entry], ['categorization', entry]] : [[STAGE_NAMES[stage] ?? stage, entry]];
      }),
    ),
    // Stages named as in `progress`, so an error lines up with its stage there.
    errors: [
      ...progress.errors,
      ...(progress.status === 'cancelled' ? [{ stage: progress.stage ?? 'workflow', code: 'cancelled', message: 'the ingestion was cancelled' }] : []),
    ].map((error) => ({ ...error, stage: STAGE_NAMES[error.stage] ?? error.stage })),
    memories_created: progress.memories_created,
    created_at: progress.created_at,
    updated_at: progress.updated_at,
  };
}

/**
 * Update Memory's body: the seed's fields, with `document` (the Python SDK's name for the content) taken
 * as `content`. A memory keeps its source's document type: one sent is refused, not dropped.
 */
export const SynapMemoryUpdate = z
  .object({
    content: unset(z.string().min(1).max(100_000)),
    document: unset(z.string().min(1).max(100_000)),
    merge_strategy: unset(MergeStrategy),
    confidence: unset(z.number().min(0).max(1)),
    metadata: unset(Metadata),
    document_type: z.unknown().optional(),
  })
  .superRefine((body, context) => {
    if (body.content !== undefined && body.document !== undefined) context.addIssue({ code: 'custom', path: ['document'], message: 'give the new content as content or as document, not both' });
    if (body.document_type !== undefined && body.document_type !== null) context.addIssue({ code: 'custom', path: ['document_type'], message: 'a memory keeps the document type of the document it came from' });
  })
  .transform(({ document, document_type: _type, ...update }) => ({ ...update, content: update.content ?? document }));

/** An update's body as MemoryStore.update takes it (400 when it changes nothing). */
export const synapUpdateOf = (body: unknown) => parseWith(MemoryUpdate, parseWith(SynapMemoryUpdate, body));

/** A memory as Synap's Get Memory answers it. */
export const SynapMemory = z.object({
  id: z.string(),
  type: MemoryType,
  content: z.string(),
  confidence: z.number(),
  entities: z.array(EntityRef),
  scope: z.object({ user_id: z.string().nullable(), customer_id: z.string().nullable(), client_id: z.string() }),
  source: z.object({ ingestion_id: z.string(), document_type: z.string(), document_created_at: z.string().nullable(), document_id: z.string().nullable() }),
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  updated_at: z.string().nullable(),
});
/** Create Memory's answer (201), and each accepted document's in a batch. */
export const SynapQueued = z.object({ ingestion_id: z.string(), status: z.literal('queued') });
export const SynapBatchResponse = z.object({ results: z.array(SynapQueued.extend({ index: z.number().int() })), errors: z.array(BatchError) });

export function synapMemory(memory: Memory): z.infer<typeof SynapMemory> {
  return {
    id: memory.id,
    type: memory.type,
    content: memory.text,
    confidence: memory.confidence,
    entities: memory.entities,
    scope: { user_id: memory.scope.user_id ?? null, customer_id: memory.scope.customer_id ?? null, client_id: memory.tenant },
    source: {
      ingestion_id: memory.provenance.job_id,
      document_type: memory.provenance.document_type,
      document_created_at: memory.provenance.document_date ?? null,
      document_id: memory.provenance.document_id ?? null,
    },
    metadata: memory.metadata ?? {},
    created_at: memory.created_at,
    updated_at: memory.updated_at ?? null,
  };
}

const memoryIdParam = (value: unknown) => parseWith(z.object({ id: z.string().regex(/^mem_[0-9a-f]{16,64}$/, 'a memory id looks like mem_<hex>') }), { id: value }).id;

export function synapSurface(deps: SurfaceDeps, jobs: IngestJobs, memories: MemoryStore, es: ElasticsearchClient, sourcesIndex: string): Router {
  const { create } = synapIngestions(jobs, es, sourcesIndex);
  return compatSurface(deps, nativeErrors, (router) => {
    router.post('/v1/memories', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(SynapCreateMemory, req.body);
      const job = await create(principalOf(req).tenant, body);
      res.status(201).json({ ingestion_id: job.jobId, status: 'queued' });
    });

    router.post('/v1/memories/batch', requirePermission('ingest'), async (req, res) => {
      const body = parseWith(SynapBatchCreate, req.body);
      const { tenant } = principalOf(req);
      const result = await acceptBatch(body.documents, body.fail_fast, SynapCreateMemory, async (document) => {
        const job = await create(tenant, document);
        return { ingestion_id: job.jobId, status: 'queued' as const };
      });
      if (result.rejected) {
        return void res.status(400).json({ error: { code: 'validation_error', message: 'the batch was rejected: at least one document is invalid (fail_fast)' }, results: [], errors: result.errors });
      }
      sendBatch(res, 201, result);
    });

    router.get('/v1/ingestions/:id', requirePermission('read'), async (req, res) => {
      const id = idParam(req.params.id, 'an ingestion id');
      res.json(ingestionStatus(await jobs.progressOrThrow(principalOf(req).tenant, id)));
    });

    router.get('/v1/memories/:id', requirePermission('read'), async (req, res) => {
      res.json(synapMemory(await memories.get(principalOf(req).tenant, memoryIdParam(req.params.id))));
    });

    const update = async (req: import('express').Request, res: import('express').Response) => {
      const id = memoryIdParam(req.params.id);
      const body = synapUpdateOf(req.body);
      res.json(synapMemory(await memories.update(principalOf(req).tenant, id, body)));
    };
    router.patch('/v1/memories/:id', requirePermission('write'), update);
    router.put('/v1/memories/:id', requirePermission('write'), update);

    router.delete('/v1/memories/:id', requirePermission('write'), async (req, res) => {
      await memories.delete(principalOf(req).tenant, memoryIdParam(req.params.id));
      res.status(204).end();
    });
  });
}
