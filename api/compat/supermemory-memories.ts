import type { Request, Router } from 'express';
import { z } from 'zod';
import type { Memory } from '../../lib/domain/memory';
import { conflict, notFound } from '../../lib/errors';
import type { MemoryStore } from '../../lib/memories';
import type { MemoryListings } from '../../lib/memory-listings';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import type { Containers } from './containers';
import { SupermemoryAddRequest } from './supermemory-documents';

/**
 * supermemory's memories (`client.memories.forget()` → DELETE /v4/memories, `updateMemory()` → PATCH
 * /v4/memories): one memory of a containerTag, named by its id or by its exact text, forgotten or
 * given new text. Shapes from the `supermemory` npm SDK's types (4.25). Cairn edits a memory in place
 * (MemoryStore.update) and deletes it for good (MemoryStore.delete), where supermemory keeps versions
 * and soft-deleted memories: the answers say what Cairn did, not what a version chain would hold.
 */
const Tag = z.string().min(1).max(255);

/** Which memory: its id, or its exact text, within the containerTag (both: the memory must be both). */
const Target = {
  containerTag: Tag,
  id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'not a memory id').optional(),
  content: z.string().min(1).max(100_000).optional(),
};
type MemoryTarget = { containerTag?: string; id?: string; content?: string };
const named = (target: MemoryTarget) => target.id !== undefined || target.content !== undefined;
const NAME_IT = { message: 'name the memory: give its id or its exact content', path: ['id'] };
/** supermemory's calls name the containerTag; Tex's may leave it to the caller's own (tex-containers.ts). */
const TexTarget = { containerTag: Tag.optional() };

const ForgetFields = z.object({
  ...Target,
  /** Accepted and not kept: the memory is deleted for good, not marked forgotten with a reason. */
  reason: z.string().max(10_000).optional(),
});
export const SupermemoryForgetRequest = ForgetFields.refine(named, NAME_IT);
export const TexForgetRequest = ForgetFields.extend(TexTarget).refine(named, NAME_IT);

export const SupermemoryForgetResponse = z.object({
  /** The memory forgotten (of several with the same content, the newest). */
  id: z.string(),
  forgotten: z.literal(true),
  /** Every memory forgotten: by content, each memory of the containerTag with exactly that text. */
  forgottenIds: z.array(z.string()),
});

const CAIRN_FORGETS_ON_REQUEST = 'Cairn keeps no scheduled forgetting: forget the memory (DELETE /v4/memories) when it is due, or send null';

const UpdateFields = z.object({
  ...Target,
  newContent: z.string().min(1).max(100_000),
  /** Takes the place of the memory's metadata; without it, the memory keeps its own. */
  metadata: SupermemoryAddRequest.shape.metadata,
  /** Only null (no expiry, which a Cairn memory never has): Cairn does not forget on a schedule. */
  forgetAfter: z.null({ error: CAIRN_FORGETS_ON_REQUEST }).optional(),
  forgetReason: z.null({ error: CAIRN_FORGETS_ON_REQUEST }).optional(),
  /** Kept in the memory's metadata as `temporalContext`, as supermemory keeps it; without it, the memory's is kept. */
  temporalContext: z
    .object({
      documentDate: z.string().max(100).nullable().optional(),
      eventDate: z.array(z.string().max(100)).max(100).nullable().optional(),
    })
    .strict()
    .optional(),
});
export const SupermemoryUpdateMemoryRequest = UpdateFields.refine(named, NAME_IT);
export const TexUpdateMemoryRequest = UpdateFields.extend(TexTarget).refine(named, NAME_IT);

export const SupermemoryUpdateMemoryResponse = z.object({
  /** The memory's own id: Cairn edits it in place. */
  id: z.string(),
  /** When this text was written: the edit's time. */
  createdAt: z.string(),
  forgetAfter: z.null(),
  forgetReason: z.null(),
  memory: z.string(),
  /** Null: the earlier text is not kept as a memory of its own, so there is no chain to name. */
  parentMemoryId: z.null(),
  rootMemoryId: z.null(),
  /** Null: Cairn does not number a memory's edits. */
  version: z.null(),
});

/** What a surface's forget and update read, and how its update answers (supermemory's or Tex's SDK model). */
export interface MemoryCalls {
  forget: z.ZodType<z.infer<typeof TexForgetRequest>>;
  update: z.ZodType<z.infer<typeof TexUpdateMemoryRequest>>;
  answer: (memory: Memory) => unknown;
}

export const supermemoryMemoryCalls: MemoryCalls = { forget: SupermemoryForgetRequest, update: SupermemoryUpdateMemoryRequest, answer: supermemoryUpdateAnswer };

export function supermemoryMemoryRoutes(router: Router, memories: MemoryStore, listings: MemoryListings, containers: Containers, calls: MemoryCalls): void {
  /**
   * The memories a request names within its container, newest first: the one with its id (and its
   * content, when given too), or every one whose text is exactly its content. None is a 404.
   */
  async function targets(req: Request, target: MemoryTarget): Promise<string[]> {
    const { tenant } = principalOf(req);
    const tag = target.containerTag;
    const where = tag === undefined ? 'in your containers' : `in containerTag ${tag}`;
    if (target.id === undefined) {
      const ids = await listings.idsWithText(tenant, containers.ownFiltersOf(req, tag === undefined ? undefined : [tag]), target.content!);
      if (ids.length === 0) throw notFound(`a memory with this exact content ${where}`);
      return ids;
    }
    const memory = await memories.get(tenant, target.id);
    if (!containers.holds(req, memory.scope, tag) || (target.content !== undefined && memory.text !== target.content)) throw notFound(`memory ${target.id} ${where}${target.content !== undefined ? ' with this content' : ''}`);
    return [memory.id];
  }

  router.delete('/v4/memories', requirePermission('write'), async (req, res) => {
    const body = parseWith(calls.forget, req.body);
    const { tenant } = principalOf(req);
    const ids = await targets(req, body);
    // Memories of the same text are the same thing remembered twice: forgetting it forgets them all.
    for (const id of ids) await memories.delete(tenant, id);
    res.json({ id: ids[0]!, forgotten: true, forgottenIds: ids } satisfies z.infer<typeof SupermemoryForgetResponse>);
  });

  router.patch('/v4/memories', requirePermission('write'), async (req, res) => {
    const body = parseWith(calls.update, req.body);
    const { tenant } = principalOf(req);
    const ids = await targets(req, body);
    // One new text for several memories would be a guess at which one was meant.
    if (ids.length > 1) throw conflict(`${ids.length} memories ${body.containerTag === undefined ? 'of yours' : `in containerTag ${body.containerTag}`} have this content (${ids.slice(0, 10).join(', ')}): name the one to update by its id`);
    const id = ids[0]!;
    const updated = await memories.update(tenant, id, { content: body.newContent, merge_strategy: 'replace', metadata: await metadataOf(id) }, { replaceMetadata: body.metadata !== undefined });
    res.json(calls.answer(updated));

    /** The metadata sent (with the memory's temporalContext unless one is sent), or the temporalContext alone to merge in. */
    async function metadataOf(memoryId: string): Promise<Memory['metadata']> {
      const temporal = body.temporalContext ? { temporalContext: body.temporalContext } : undefined;
      if (body.metadata === undefined) return temporal;
      const kept = temporal ?? pick((await memories.get(tenant, memoryId)).metadata, 'temporalContext');
      return { ...body.metadata, ...kept };
    }
  });
}

const pick = (metadata: Memory['metadata'], key: string) => (metadata && Object.hasOwn(metadata, key) ? { [key]: metadata[key] } : undefined);

export function supermemoryUpdateAnswer(memory: Memory): z.infer<typeof SupermemoryUpdateMemoryResponse> {
  return {
    id: memory.id,
    createdAt: memory.updated_at ?? memory.created_at,
    forgetAfter: null,
    forgetReason: null,
    memory: memory.text,
    parentMemoryId: null,
    rootMemoryId: null,
    version: null,
  };
}
