import type { Router } from 'express';
import { z } from 'zod';
import type { JobProgress } from '../../lib/domain/job';
import { SourceKind } from '../../lib/domain/ingest';
import { MemoryType, type Memory } from '../../lib/domain/memory';
import type { PublicSource } from '../../lib/domain/source';
import type { Entity } from '../../lib/entities/entity';
import type { EntityStore } from '../../lib/entities/store';
import { notFound } from '../../lib/errors';
import { asUuid, fromUuid, sourceIdOf } from '../../lib/ids';
import type { IngestJobs } from '../../lib/jobs';
import type { MemoryStore } from '../../lib/memories';
import type { MemoryListings } from '../../lib/memory-listings';
import type { SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { idParam, parseQuery } from '../errors';
import { eventTimeOf } from './crosmos';
import { CrosmosPage, pageWithinWindow } from './crosmos-spaces';
import { WireUuid } from './surface';

/**
 * The Crosmos SDK's sources, memories and entities (`/api/v1/sources`, `/memories`, `/entities`,
 * outside the seed), read and deleted through Cairn's own stores, within one space: another space's
 * or another tenant's id answers 404. What Cairn does not keep (a source's content, access counts,
 * importance, graph edges) reads null, or 0 for edges (Cairn keeps none).
 */

/** Every call names its space, as `space_id` or `space_uuid` (the SDK sends either); both must agree. */
const Space = { space_id: WireUuid.optional(), space_uuid: WireUuid.optional() };
type SpaceNamed = { space_id?: string; space_uuid?: string };

const Page = { ...Space, ...CrosmosPage };

function spaceNamed(query: SpaceNamed, ctx: z.RefinementCtx): void {
  if (query.space_id === undefined && query.space_uuid === undefined) ctx.addIssue({ code: 'custom', message: 'name the space: space_id (or space_uuid) is required', path: ['space_id'] });
  if (query.space_id !== undefined && query.space_uuid !== undefined && query.space_id !== query.space_uuid) {
    ctx.addIssue({ code: 'custom', message: 'space_id and space_uuid name different spaces', path: ['space_uuid'] });
  }
}

function pageWithin(query: SpaceNamed & { offset: number; limit: number }, ctx: z.RefinementCtx): void {
  spaceNamed(query, ctx);
  pageWithinWindow(query, ctx);
}

export const CrosmosSpaceQuery = z.object(Space).superRefine(spaceNamed);

const Order = z.enum(['asc', 'desc']);

export const CrosmosSourceListQuery = z.object({
  ...Page,
  /** Cairn's kind of source: conversation, document, file or url. */
  content_type: SourceKind.optional(),
  /** A source's extraction status is its last job's, which a listing cannot filter on: refused rather than ignored. */
  extraction_status: z.never({ error: 'filtering by extraction_status is not supported: each listed source says its own' }).optional(),
}).superRefine(pageWithin);
export const CrosmosMemoryListQuery = z.object({
  ...Page,
  /** Cairn's memory types (what memory_type answers); Crosmos' viewpoint, semantic and inference are not Cairn's. */
  memory_type: z.enum(MemoryType.options, { error: `one of Cairn's memory types: ${MemoryType.options.join(', ')}` }).optional(),
  order: Order.default('desc'),
  /** Cairn keeps when a memory was stored, not its importance or how it is accessed. */
  sort_by: z.enum(['created_at'], { error: 'only created_at: Cairn does not track importance, event-time order or access' }).default('created_at'),
}).superRefine(pageWithin);
export const CrosmosEntityListQuery = z.object({
  ...Page,
  q: z.string().min(1).max(512).optional(),
  entity_type: z.string().min(1).max(64).optional(),
  order: Order.optional(),
  /** Cairn keeps no graph edges to sort by. */
  sort_by: z.enum(['name', 'created_at'], { error: 'name or created_at: Cairn keeps no graph edges to sort by' }).optional(),
}).superRefine(pageWithin);

const ExtractionStatus = z.enum(['pending', 'processing', 'completed', 'failed']);
const SourceFields = {
  id: z.string(),
  content_type: z.string(),
  created_at: z.string().nullable(),
  updated_at: z.string().nullable(),
  /** Its last job's: null when that job is no longer known. */
  extraction_status: ExtractionStatus.nullable(),
  meta: z.record(z.string(), z.unknown()).nullable(),
  space_id: z.string(),
  /** Cairn serves what was extracted (memories), not the content that was sent, and counts no tokens of it. */
  token_count: z.null(),
};
export const CrosmosSource = z.object({ ...SourceFields, content: z.null() });
export const CrosmosSourceList = z.object({ sources: z.array(z.object({ ...SourceFields, content_preview: z.null() })), count: z.number().int(), total: z.number().int() });

export const CrosmosMemory = z.object({
  id: z.string(),
  content: z.string(),
  memory_type: z.string(),
  created_at: z.string(),
  event_time: z.string().nullable(),
  meta: z.record(z.string(), z.unknown()).nullable(),
  space_id: z.string(),
  /** Not kept by Cairn: how often and when a memory was read, its importance; a deleted memory is gone, not marked. */
  access_frequency: z.null(),
  last_accessed_at: z.null(),
  importance_score: z.null(),
  forgotten_at: z.null(),
});
export const CrosmosMemoryList = z.object({ memories: z.array(CrosmosMemory), count: z.number().int() });

export const CrosmosEntity = z.object({
  id: z.string(),
  name: z.string(),
  entity_type: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  /** Cairn resolves entities but keeps no graph edges between them. */
  edge_count: z.literal(0),
  space_id: z.string(),
});
export const CrosmosEntityList = z.object({ entities: z.array(CrosmosEntity), total: z.number().int() });
export const CrosmosEntityDetail = CrosmosEntity.extend({
  memories: z.array(z.object({ memory_id: z.string(), content: z.string(), memory_type: z.string(), created_at: z.string() })),
});

/** How many of an entity's memories its detail lists, newest first. */
const ENTITY_MEMORIES = 100;

const spaceOf = (query: SpaceNamed) => (query.space_id ?? query.space_uuid)!;

const extractionStatus = (progress: JobProgress | undefined): z.infer<typeof ExtractionStatus> | null =>
  !progress ? null : progress.status === 'queued' ? 'pending' : progress.status === 'running' ? 'processing' : progress.status === 'completed' ? 'completed' : 'failed';

function crosmosSource(source: PublicSource, space: string, progress: JobProgress | undefined) {
  return {
    id: asUuid(source.id),
    content_type: source.kind ?? 'document',
    created_at: source.created_at ?? null,
    updated_at: source.updated_at ?? null,
    extraction_status: extractionStatus(progress),
    meta: source.metadata ?? null,
    space_id: space,
    token_count: null,
  };
}

function crosmosMemory(memory: Memory): z.infer<typeof CrosmosMemory> {
  return {
    id: memory.id,
    content: memory.text,
    memory_type: memory.type,
    created_at: memory.created_at,
    event_time: eventTimeOf(memory),
    meta: memory.metadata ?? null,
    space_id: memory.scope.space_id!,
    access_frequency: null,
    last_accessed_at: null,
    importance_score: null,
    forgotten_at: null,
  };
}

const crosmosEntity = (entity: Entity, space: string): z.infer<typeof CrosmosEntity> => ({
  id: asUuid(entity.id),
  name: entity.name,
  entity_type: entity.type ?? null,
  created_at: entity.first_seen_at,
  updated_at: entity.last_seen_at,
  edge_count: 0,
  space_id: space,
});

export interface CrosmosStores {
  sources: SourceStore;
  memories: MemoryStore;
  listings: MemoryListings;
  entities: EntityStore;
}

export function crosmosStoreRoutes(router: Router, jobs: IngestJobs, stores: CrosmosStores): void {
  /** A source of the tenant within the space, else the vendor's 404. */
  const sourceIn = async (tenant: string, id: unknown, space: string) => {
    const source = await stores.sources.get(tenant, sourceIdOf(idParam(id, 'a source id')));
    if (source.scope?.space_id !== space) throw notFound(`source ${id}`);
    return source;
  };
  /** A memory of the tenant within the space (its `mem_<hex>` id, or that id's UUID form), else the vendor's 404. */
  const memoryIn = async (tenant: string, id: unknown, space: string) => {
    const memory = await stores.memories.get(tenant, fromUuid('mem', idParam(id, 'a memory id')));
    if (memory.scope.space_id !== space) throw notFound(`memory ${id}`);
    return memory;
  };

  router.get('/api/v1/sources', requirePermission('read'), async (req, res) => {
    const query = parseQuery(CrosmosSourceListQuery, req.query);
    const { tenant } = principalOf(req);
    const space = spaceOf(query);
    const { sources, total } = await stores.sources.list(tenant, { space_id: space, kind: query.content_type }, { from: query.offset, size: query.limit });
    const progress = await jobs.progressOfMany(tenant, sources.flatMap((source) => (source.last_job_id ? [source.last_job_id] : [])));
    const listed = sources.map((source) => ({ ...crosmosSource(source, space, source.last_job_id ? progress.get(source.last_job_id) : undefined), content_preview: null }));
    res.json({ sources: listed, count: listed.length, total } satisfies z.infer<typeof CrosmosSourceList>);
  });

  router.get('/api/v1/sources/:id', requirePermission('read'), async (req, res) => {
    const { tenant } = principalOf(req);
    const space = spaceOf(parseQuery(CrosmosSpaceQuery, req.query));
    const source = await sourceIn(tenant, req.params.id, space);
    const progress = source.last_job_id ? await jobs.progress(tenant, source.last_job_id) : undefined;
    res.json({ ...crosmosSource(source, space, progress), content: null } satisfies z.infer<typeof CrosmosSource>);
  });

  // As DELETE /v1/sources/:id: with its memories, its mentions in entities and its stored content; 409 while a job of it runs.
  router.delete('/api/v1/sources/:id', requirePermission('write'), async (req, res) => {
    const { tenant } = principalOf(req);
    const source = await sourceIn(tenant, req.params.id, spaceOf(parseQuery(CrosmosSpaceQuery, req.query)));
    await stores.sources.delete(tenant, source.id);
    res.status(204).end();
  });

  router.get('/api/v1/memories', requirePermission('read'), async (req, res) => {
    const query = parseQuery(CrosmosMemoryListQuery, req.query);
    const filters = { space_id: spaceOf(query), ...(query.memory_type ? { types: [query.memory_type] } : {}) };
    const memories = await stores.listings.page(principalOf(req).tenant, filters, { from: query.offset, size: query.limit, order: query.order });
    res.json({ memories: memories.map(crosmosMemory), count: memories.length } satisfies z.infer<typeof CrosmosMemoryList>);
  });

  router.get('/api/v1/memories/:id', requirePermission('read'), async (req, res) => {
    res.json(crosmosMemory(await memoryIn(principalOf(req).tenant, req.params.id, spaceOf(parseQuery(CrosmosSpaceQuery, req.query)))));
  });

  // As DELETE /v1/memories/:id: a tombstone keeps it from being written back by the same content sent again.
  router.delete('/api/v1/memories/:id', requirePermission('write'), async (req, res) => {
    const { tenant } = principalOf(req);
    const memory = await memoryIn(tenant, req.params.id, spaceOf(parseQuery(CrosmosSpaceQuery, req.query)));
    await stores.memories.delete(tenant, memory.id);
    res.status(204).end();
  });

  router.get('/api/v1/entities', requirePermission('read'), async (req, res) => {
    const query = parseQuery(CrosmosEntityListQuery, req.query);
    const space = spaceOf(query);
    const field = query.sort_by ?? (query.order ? 'created_at' : undefined);
    const { entities, total } = await stores.entities.list(principalOf(req).tenant, {
      q: query.q,
      type: query.entity_type,
      size: query.limit,
      from: query.offset,
      namedIn: { space_id: space },
      sort: field && { field: field === 'name' ? 'name' : 'first_seen_at', order: query.order ?? (field === 'name' ? 'asc' : 'desc') },
    });
    res.json({ entities: entities.map((entity) => crosmosEntity(entity, space)), total } satisfies z.infer<typeof CrosmosEntityList>);
  });

  router.get('/api/v1/entities/:id', requirePermission('read'), async (req, res) => {
    const { tenant } = principalOf(req);
    const space = spaceOf(parseQuery(CrosmosSpaceQuery, req.query));
    const entity = await stores.entities.get(tenant, fromUuid('ent', idParam(req.params.id, 'an entity id')), { space_id: space });
    const { memories } = await stores.listings.list(tenant, { space_id: space, entity_ids: [entity.id] }, ENTITY_MEMORIES);
    res.json({
      ...crosmosEntity(entity, space),
      memories: memories.map((memory) => ({ memory_id: memory.id, content: memory.text, memory_type: memory.type, created_at: memory.created_at })),
    } satisfies z.infer<typeof CrosmosEntityDetail>);
  });
}
