import type { Router } from 'express';
import { z } from 'zod';
import { deleteMatches, matchingMemories } from '../../lib/forget-matching';
import { forbidden } from '../../lib/errors';
import { asUuid } from '../../lib/ids';
import type { MemoryStore } from '../../lib/memories';
import type { SearchDeps } from '../../lib/search/execute';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { SCOPE_LADDER_REFUSED } from './synap';

/**
 * Synap's Python SDK `memories.forget()` (`POST /api/v1/memories/forget`, outside the seed): the
 * memories of one user a description matches (lib/forget-matching.ts), listed (`preview`) or deleted
 * (`direct`).
 */
export const SynapForgetRequest = z.object({
  description: z.string().trim().min(3).max(500),
  /** Synap answers 400 without one; here a 422 naming the field (the SDK raises InvalidInputError for both). */
  user_id: z.string({ error: 'scope the call to exactly one user: user_id is required' }).min(1).max(255),
  customer_id: z.string().min(1).max(255).nullish(),
  /** Refused when given, as create's (see SynapCreateMemory). */
  scope: z.unknown().refine((scope) => scope === undefined || scope === null, SCOPE_LADDER_REFUSED).optional(),
  mode: z.enum(['preview', 'direct']).default('preview'),
});

export const SynapForgetResponse = z.object({
  status: z.enum(['nothing_matches', 'preview', 'deleted', 'partial']),
  /** Cairn files no deletion request to approve: a preview only lists what matched. */
  request_id: z.null(),
  candidates: z.array(z.object({ memory_id: z.string(), content: z.string(), memory_type: z.string(), store: z.literal('memory') })),
  deleted_ids: z.array(z.string()),
  failed_ids: z.array(z.string()),
  /** `memory` when some matched memories could not be deleted (failed_ids): try again. */
  still_present_in: z.array(z.literal('memory')),
  may_be_incomplete: z.boolean(),
});

export function synapForgetRoutes(router: Router, search: SearchDeps, memories: MemoryStore): void {
  router.post('/v1/memories/forget', requirePermission('search'), async (req, res) => {
    const body = parseWith(SynapForgetRequest, req.body);
    const principal = principalOf(req);
    if (body.mode === 'direct' && !principal.permissions.has('write')) throw forbidden('write');
    const { matches, mayBeIncomplete } = await matchingMemories(search, principal.tenant, body.description, { userId: body.user_id, customerId: body.customer_id ?? undefined });
    const candidates = matches.map((memory) => ({ memory_id: asUuid(memory.id), content: memory.text, memory_type: memory.type, store: 'memory' as const }));
    const answer = { request_id: null, candidates, deleted_ids: [], failed_ids: [], still_present_in: [], may_be_incomplete: mayBeIncomplete };
    if (matches.length === 0) return void res.json({ ...answer, status: 'nothing_matches' } satisfies z.infer<typeof SynapForgetResponse>);
    if (body.mode === 'preview') return void res.json({ ...answer, status: 'preview' } satisfies z.infer<typeof SynapForgetResponse>);
    const { deletedIds, failedIds } = await deleteMatches(memories, principal.tenant, matches);
    res.json({
      ...answer,
      status: failedIds.length ? 'partial' : 'deleted',
      deleted_ids: deletedIds.map(asUuid),
      failed_ids: failedIds.map(asUuid),
      still_present_in: failedIds.length ? ['memory'] : [],
    } satisfies z.infer<typeof SynapForgetResponse>);
  });
}
