import type { Router } from 'express';
import { z } from 'zod';
import { DeletionReceipts } from '../../lib/deletion-receipts';
import { CairnError, conflict, notFound } from '../../lib/errors';
import { deleteInTurn, refuseWhileWriting } from '../../lib/forget-turn';
import type { IngestJobs } from '../../lib/jobs';
import type { MemoryStore } from '../../lib/memories';
import type { SourceStore } from '../../lib/sources';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { actingUser, checkActsFor, tokenUser } from './tex-auth';

/**
 * Tex's SDK's deletions (`tex.deletions`, the org owner's `/me/deletions`): a user's data erased as
 * `POST /v1/sources/delete {"filters": {"user_id"}}` erases it, or one memory as `DELETE
 * /v1/memories/:id` deletes it, answered with a receipt `deletions.get` reads back. Cairn has no soft
 * tier: the SDK always asks for `soft`, and what happens is Tex's purge, at once — the data is gone,
 * not hidden until a platform operator's purge, which is what an erasure is for; the receipt says so.
 */
const Kind = z.enum(['memory', 'user_scope', 'scope', 'user']);

export const TexDeletionRequest = z.strictObject({
  target: z
    .strictObject({ kind: Kind, value: z.string().trim().min(1).max(255), owner_user_id: z.string().trim().min(1).max(255).optional() })
    .refine((target) => target.kind !== 'scope', { path: ['kind'], message: 'a hierarchical scope ("team:eng") is not supported: Cairn keeps no shared scopes; delete a user (user, user_scope) or a memory' })
    .refine((target) => target.kind !== 'memory' || target.owner_user_id !== undefined, { path: ['owner_user_id'], message: 'owner_user_id is required for a memory deletion: the id of the user whose memory it is' })
    .refine((target) => target.kind === 'memory' || target.owner_user_id === undefined, { path: ['owner_user_id'], message: 'owner_user_id names the owner of a memory: a user deletion names its user in value' }),
  /** Both are a hard delete; `purge` is accepted too since it is what happens. */
  mode: z.enum(['soft', 'purge']).default('soft'),
  reason: z.string().max(1_000).optional(),
  idempotency_key: z.string().min(1).max(255).optional(),
});
type TexDeletionRequest = z.infer<typeof TexDeletionRequest>;

const Count = z.number().int();
const NotCovered = z.object({ tier: z.string(), reason: z.string() });

/** The SDK's DeletionReceipt, its tiers mapped onto Cairn's stores, with what Cairn keeps in `not_covered`. */
export const TexDeletionReceipt = z.object({
  request_id: z.string(),
  org_id: z.string(),
  target: z.object({ kind: Kind, value: z.string(), owner_user_id: z.string().optional() }),
  /** What was done: a hard delete, whatever was asked (`requested_mode`). */
  mode: z.literal('purge'),
  requested_mode: z.enum(['soft', 'purge']),
  /** `completed`: everything the target names is deleted (a delete cut short answers 503 instead: send it again). */
  status: z.literal('completed'),
  requested_by: z.string(),
  requested_via: z.enum(['api_key', 'access_token']),
  reason: z.string().nullable(),
  created_at: z.string(),
  completed_at: z.string(),
  /** Nothing is left to purge. */
  purge_after: z.null(),
  /** True when this answers an idempotency key sent before: nothing was deleted again. */
  replayed: z.boolean(),
  note: z.string(),
  tiers: z.object({
    helixdb: z.object({ status: z.literal('completed'), deleted: Count, refused: Count, skipped_unscoped: Count, errors: z.array(z.string()), memories_deleted: Count, entities_deleted: Count.optional(), entities_updated: Count.optional(), note: z.string() }),
    active_memory: z.object({ status: z.literal('not_separate'), fragments_deleted: Count, kv_keys_deleted: Count, episodes_tombstoned: Count, episodes_deleted: Count, errors: z.array(z.string()), note: z.string() }),
    auth_db: z.object({ status: z.literal('not_applicable'), scope_memberships_deleted: Count, episode_registry_deleted: Count, episode_registry_retained: Count, usage_events_deleted: Count, usage_events_retained: Count, errors: z.array(z.string()), note: z.string() }),
    sources: z.object({ status: z.enum(['completed', 'not_applicable']), deleted: Count, note: z.string() }),
    blob_store: z.object({ status: z.enum(['completed', 'not_applicable']), job_contents_deleted: Count, note: z.string() }),
  }),
  not_covered: z.array(NotCovered),
});
type TexDeletionReceipt = z.infer<typeof TexDeletionReceipt>;

/** What erasing the target removed. */
interface Erased {
  memories: number;
  entities?: { deleted: number; updated: number };
  sources?: number;
  jobContents?: number;
}

/** How many rounds of SourceStore.deleteAll (each up to its BULK sources) one user's erasure runs. */
const USER_ROUNDS = 20;

const NO_SOFT_TIER =
  'Cairn has no soft tier: the target was deleted for good before this receipt was answered (mode "purge", whatever was requested). Nothing can be restored, and nothing is left for a purge (purge_after null).';

const KEPT: z.infer<typeof NotCovered>[] = [
  { tier: 'job_summaries', reason: "Each job's summary (GET /v1/jobs/{id}: status, counts, stages, errors, times) stays as the history of what ran, without the scope, document id and URL it was sent with." },
  { tier: 'temporal_history', reason: "Temporal keeps each job's workflow (its input and memo: ids, scope with the user id, title, metadata, file name, URL; never the text) for its namespace's retention." },
  { tier: 'elasticsearch_segments', reason: "Elasticsearch keeps deleted documents' bytes in its segments until they merge; no query returns them." },
  { tier: 'deletion_receipt', reason: 'This receipt (the target, who asked, the reason) is kept for deletions.get until the tenant is erased.' },
];
const KEPT_OF_A_MEMORY: z.infer<typeof NotCovered>[] = [
  { tier: 'blob_store_upload', reason: "The upload the memory came from keeps its text in Cairn's blob store, which no search or recall reads, until its source is deleted (a user deletion deletes it)." },
  { tier: 'tombstone', reason: "A tombstone (the memory's id, its source's id, its user, the time; no text) keeps the same content from being stored again, until its source is deleted." },
];

/** The user whose data the target is. */
const ownerOf = (target: TexDeletionRequest['target']) => target.owner_user_id ?? target.value;

/** A memory id as recall answers it (without `mem_`) or as Cairn stores it. */
const memoryIdOf = (value: string) => (value.startsWith('mem_') ? value : `mem_${value}`);

export function texDeletionRoutes(router: Router, jobs: IngestJobs, sources: SourceStore, memories: MemoryStore, receipts: DeletionReceipts<TexDeletionReceipt>): void {
  async function erase(tenant: string, target: TexDeletionRequest['target']): Promise<Erased> {
    if (target.kind === 'memory') {
      const id = memoryIdOf(target.value);
      const memory = await memories.get(tenant, id).catch((error: unknown) => {
        throw error instanceof CairnError && error.code === 'not_found' ? notFound(`memory ${target.value} of user ${target.owner_user_id}`) : error;
      });
      if (memory.scope.user_id !== target.owner_user_id) throw notFound(`memory ${target.value} of user ${target.owner_user_id}`);
      await refuseWhileWriting(jobs, tenant, [memory.provenance.job_id], ([jobId]) =>
        conflict(`memory ${target.value} is still being written by job ${jobId}: delete it once that job has ended (GET /ingestion/status/${jobId})`),
      );
      // Every copy of what it says (a Tex turn's fragment and its enrichment), the one named last: a
      // delete cut short leaves it, so the same request sent again finishes the work.
      const ids = [...(await memories.withCopies(tenant, [memory])).filter((copy) => copy !== id), id];
      await deleteInTurn(memories, tenant, ids);
      return { memories: ids.length };
    }
    const erased = await sources.deleteEvery(tenant, { user_id: target.value }, `user ${target.value}`, USER_ROUNDS);
    if (target.kind === 'user' && erased.sources_deleted === 0 && erased.memories_deleted === 0) throw notFound(`user ${target.value} (nothing of theirs is stored in this tenant)`);
    return {
      memories: erased.memories_deleted,
      entities: { deleted: erased.entities_deleted, updated: erased.entities_updated },
      sources: erased.sources_deleted,
      jobContents: erased.jobs_cleared,
    };
  }

  router.post('/me/deletions', requirePermission('write'), async (req, res) => {
    const body = parseWith(TexDeletionRequest, req.body);
    const principal = principalOf(req);
    checkActsFor(req, ownerOf(body.target), body.target.kind === 'memory' ? 'target.owner_user_id' : 'target.value');
    const requestId = DeletionReceipts.requestId(principal.tenant, body.idempotency_key);
    const earlier = body.idempotency_key === undefined ? undefined : await receipts.get(principal.tenant, requestId);
    if (earlier) return void res.json(replay(earlier, body));
    const createdAt = new Date().toISOString();
    const erased = await erase(principal.tenant, body.target);
    const receipt = receiptOf(body, erased, {
      requestId,
      orgId: principal.tenant,
      requestedBy: actingUser(req),
      requestedVia: req.texClaims ? 'access_token' : 'api_key',
      createdAt,
    });
    const kept = await receipts.keep(principal.tenant, requestId, receipt);
    res.json(kept === receipt ? receipt : replay(kept, body));
  });

  router.get('/me/deletions/:request_id', requirePermission('read'), async (req, res) => {
    const requestId = parseWith(z.string().min(1).max(64), req.params.request_id, 'request_id (path)', 'request_id');
    const receipt = await receipts.get(principalOf(req).tenant, requestId);
    const user = tokenUser(req);
    // A user's token reads the receipts of its user's data alone.
    if (!receipt || (user !== undefined && ownerOf(receipt.target) !== user)) throw notFound(`deletion ${requestId}`);
    res.json(receipt satisfies TexDeletionReceipt);
  });

  // Tex's platform operators' surface: Cairn has none, and an org's deletions need no purge after them.
  router.use('/admin/deletions', requirePermission('read'), () => {
    throw new CairnError(
      'forbidden',
      'Cairn serves no platform-admin deletion surface: the org surface (tex.deletions, /me/deletions) already deletes for good, so there is no purge to run; a whole tenant is erased with DELETE /v1/admin/tenants/{tenant}',
    );
  });
}

/** An earlier receipt under the same idempotency key: the same target again is answered with it, another is a conflict. */
function replay(earlier: TexDeletionReceipt, body: TexDeletionRequest): TexDeletionReceipt {
  const same = earlier.target.kind === body.target.kind && earlier.target.value === body.target.value && earlier.target.owner_user_id === body.target.owner_user_id;
  if (!same) throw conflict(`idempotency_key ${body.idempotency_key} was sent with another target (deletion ${earlier.request_id} of ${earlier.target.kind} ${earlier.target.value}): use a new key for a new deletion`);
  return { ...earlier, replayed: true };
}

function receiptOf(
  body: TexDeletionRequest,
  erased: Erased,
  at: { requestId: string; orgId: string; requestedBy: string; requestedVia: 'api_key' | 'access_token'; createdAt: string },
): TexDeletionReceipt {
  const ofAMemory = body.target.kind === 'memory';
  return {
    request_id: at.requestId,
    org_id: at.orgId,
    target: body.target,
    mode: 'purge',
    requested_mode: body.mode,
    status: 'completed',
    requested_by: at.requestedBy,
    requested_via: at.requestedVia,
    reason: body.reason ?? null,
    created_at: at.createdAt,
    completed_at: new Date().toISOString(),
    purge_after: null,
    replayed: false,
    note: NO_SOFT_TIER,
    tiers: {
      helixdb: {
        status: 'completed',
        deleted: erased.memories,
        refused: 0,
        skipped_unscoped: 0,
        errors: [],
        memories_deleted: erased.memories,
        ...(erased.entities ? { entities_deleted: erased.entities.deleted, entities_updated: erased.entities.updated } : {}),
        note: ofAMemory
          ? 'Cairn memories deleted: the memory and every copy of what it says (a Tex turn\'s fragment and what its enrichment extracted); entities only they named in their source go with them.'
          : "Cairn memories deleted: every memory of the user's sources (turn fragments, their enrichment, documents', preferences), with their vectors; entities only those sources named are deleted, the others no longer name them (entities_updated).",
      },
      active_memory: {
        status: 'not_separate',
        fragments_deleted: 0,
        kv_keys_deleted: 0,
        episodes_tombstoned: 0,
        episodes_deleted: 0,
        errors: [],
        note: "Cairn keeps a turn's active fragment as one of its memories: deleted and counted in helixdb.memories_deleted. A Tex episode is a session's source (sources.deleted).",
      },
      auth_db: {
        status: 'not_applicable',
        scope_memberships_deleted: 0,
        episode_registry_deleted: 0,
        episode_registry_retained: 0,
        usage_events_deleted: 0,
        usage_events_retained: 0,
        errors: [],
        note: 'Cairn keeps no scope memberships, episode registry or usage events of a user.',
      },
      sources: ofAMemory
        ? { status: 'not_applicable', deleted: 0, note: "A memory's deletion leaves its source (what was sent) and the source's other memories." }
        : { status: 'completed', deleted: erased.sources ?? 0, note: "What was sent for the user (documents, conversations and Tex sessions, files, URLs, preferences), each source's record with its turn counter and its memories' tombstones." },
      blob_store: ofAMemory
        ? { status: 'not_applicable', job_contents_deleted: 0, note: 'The upload the memory came from stays until its source is deleted (not_covered).' }
        : { status: 'completed', job_contents_deleted: erased.jobContents ?? 0, note: "The stored content of the sources' jobs: uploads, fetched pages, parsed text and artifacts, counted by job." },
    },
    not_covered: ofAMemory ? [...KEPT_OF_A_MEMORY, ...KEPT] : KEPT,
  };
}
