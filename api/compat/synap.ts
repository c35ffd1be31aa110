import type { Router } from 'express';
import { z } from 'zod';
import type { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { Iso8601Date } from '../../lib/domain/dates';
import { DocumentType, IngestMode, Metadata, type Format, type IngestRequestInput } from '../../lib/domain/ingest';
import { isFinalStatus, isPartlyCompleted, type JobProgress, type StageState } from '../../lib/domain/job';
import { getDocument } from '../../lib/elasticsearch/client';
import { EntityRef, MemoryType, type Memory } from '../../lib/domain/memory';
import { conflict } from '../../lib/errors';
import { asUuid, sourceId as deriveSourceId } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import type { IngestContent } from '../../lib/job-request';
import { MemoryUpdate, type MemoryStore } from '../../lib/memories';
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
      context.addIssue({ code: 'custom', path: ['scope'], message: 'Cairn has no scope levels between customer and user: leave scope out and send user_id and customer_id' });
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

/**
 * How many times one document_id can be created again after its source was deleted, while Temporal
 * still keeps the earlier runs (its retention): each time walks one more run of its job-id chain.
 */
const MAX_DOCUMENT_GENERATIONS = 50;

const memoryIdParam = (value: unknown) => parseWith(z.object({ id: z.string().regex(/^mem_[0-9a-f]{16,64}$/, 'a memory id looks like mem_<hex>') }), { id: value }).id;

/** What a Synap ingestion is made of: the document's fields, and its content when it is not `content` (an upload). */
type SynapFields = z.infer<typeof SynapCreateMemory>;
export type SynapDocument = Pick<SynapFields, 'document_type' | 'mode'> & Partial<Omit<SynapFields, 'document_type' | 'mode'>>;
export interface SynapUpload {
  content: Buffer;
  format: Format;
  fileName?: string;
  declaredContentType?: string;
}

/**
 * Synap's create, shared by the seed's routes and the Python SDK's (synap-sdk.ts): one document → one
 * ingestion; a document_id is accepted once per tenant (409 after).
 */
export function synapIngestions(jobs: IngestJobs, es: ElasticsearchClient, sourcesIndex: string) {
  async function create(tenant: string, body: SynapDocument, upload?: SynapUpload) {
    const request: IngestRequestInput & IngestContent = {
      tenant,
      kind: upload ? 'file' : 'document',
      format: upload?.format ?? body.format ?? 'TXT',
      documentType: body.document_type,
      documentId: body.document_id,
      // "Defaults to the current time if not provided."
      documentDate: body.document_created_at ?? new Date().toISOString(),
      mode: body.mode,
      scope: { userId: body.user_id, customerId: body.customer_id },
      metadata: body.metadata,
      surface: 'synap',
      fileName: upload?.fileName,
      declaredContentType: upload?.declaredContentType,
      content: upload?.content ?? body.content,
    };
    if (!body.document_id) return jobs.start(request);
    const taken = () => conflict(`document_id ${body.document_id} was already ingested`);
    const sourceId = deriveSourceId(tenant, `doc:${body.document_id}`);
    const sourceExists = async () => Boolean(await getDocument(es, { index: sourcesIndex, id: sourceId, _source: false }));
    const startUnder = (jobId: string) =>
      jobs.start(request, { jobId, rejectDuplicate: true }).catch((error) => {
        if ((error as { code?: string }).code === 'conflict') throw taken();
        throw error;
      });
    // The workflow id is derived from the document_id, so Temporal itself refuses a second start
    // (race-free); the source record catches a duplicate after Temporal's retention has passed.
    if (await sourceExists()) throw taken();
    const first = asUuid(jobs.derivedJobId(tenant, 'synap-document', body.document_id));
    try {
      return await startUnder(first);
    } catch (error) {
      if ((error as { code?: string }).code !== 'conflict') throw error;
    }
    // Refused: a run under the first id did not fail. Only when its source was deleted since is the
    // document_id free, under a later id of its chain (looked up here, not on every create).
    const next = await documentJobId(tenant, body.document_id, sourceExists);
    if (!next || next === first) throw taken();
    return startUnder(next);
  }

  /**
   * The job id a document_id's next ingestion starts under: the first of its chain (each derived from
   * the one before) that Temporal keeps no completed run of. A completed ingestion recorded its source
   * before it completed, so a record missing now was deleted (DELETE /v1/sources): the document_id is
   * free again, under the next id. Concurrent creates walk the same chain to the same id, where
   * Temporal lets one start. Undefined while the source exists (checked after each completed run is
   * seen: it may have completed since the caller's check), or past MAX_DOCUMENT_GENERATIONS.
   */
  async function documentJobId(tenant: string, documentId: string, sourceExists: () => Promise<boolean>): Promise<string | undefined> {
    let jobId = asUuid(jobs.derivedJobId(tenant, 'synap-document', documentId));
    for (let generation = 0; generation < MAX_DOCUMENT_GENERATIONS; generation += 1) {
      // None: never started, or past retention. Running: the start refuses it (409). Failed or
      // cancelled: the start runs it again (a failed ingestion may be re-sent).
      if ((await jobs.runStatus(tenant, jobId)) !== 'COMPLETED') return jobId;
      if (await sourceExists()) return undefined;
      jobId = asUuid(jobs.derivedJobId(tenant, 'synap-document', documentId, 'after', jobId));
    }
    return undefined;
  }

  return { create };
}

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
