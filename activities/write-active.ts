import type { Client } from '@elastic/elasticsearch';
import { getJson, putJson } from '../lib/blob/store';
import { countTokens } from '../lib/chunking/tokens';
import { turnText } from '../lib/chunking/chunk-conversation';
import { Conversation } from '../lib/domain/ingest';
import type { StoredMemory } from '../lib/domain/memory';
import { badInput } from '../lib/errors';
import { sha256 } from '../lib/ids';
import { bulkFailure } from '../lib/elasticsearch/client';
import type { IndexNames } from '../lib/elasticsearch/indices';
import { SharedRefresh } from '../lib/elasticsearch/refresh';
import type { ActivityDeps } from './deps';
import { memoryScope, requestProvenance } from '../lib/domain/scope';
import type { StageInput } from './types';
import { stemmedText } from '../lib/search/analysis';
import { isoDate } from '../lib/domain/dates';
import { assertNotBeingDeleted, Leases } from '../lib/leases';
import { createWritePreferences } from './write-preferences';

export interface ActiveWriteResult {
  /** One per turn sent, in order: the turn's stable hash (its memory is `mem_<hash>`). */
  fragmentIds: string[];
  /** How many turns were not stored before this write (only these are billed and enriched). */
  newTurns: number;
  tokensIn: number;
  /** Blob of the new turns only, for the passive pipeline; absent when nothing is new. */
  passiveBlobKey?: string;
}

/** Where a Tex turn was said: the org, user and session it is written under. */
export interface TurnScope {
  orgId?: string;
  userId?: string;
  sessionId?: string;
}

/**
 * A turn's identity is a hash of role + text + timestamp (the Tex contract) within the tenant and the
 * scope it is written under, so re-sending a turn finds the fragment it already wrote instead of
 * writing another, and the same words from another user or session (two users' "yes", with no
 * timestamp) are their own turns.
 */
export const fragmentHash = (tenant: string, scope: TurnScope, role: string, text: string, timestamp: string | undefined) =>
  sha256('tex-turn', tenant, scope.orgId, scope.userId, scope.sessionId, role, text, timestamp ?? '');

/**
 * What a session has stored: which of these turns (by an active write, its fragment `mem_<hash>`, or
 * by a passive run, a memory of the source whose provenance names the turn), each with the position it
 * was stored at when its memories say (a fragment's store it; it is kept when the turn comes again);
 * and the position its next turn takes, one past the last it stored, so the turns of successive writes
 * are numbered on from each other (neighbouring turns are found by position) rather than each write
 * starting again at 0; and which of these turns were forgotten (their fragment deleted: its
 * tombstone), which a write does not store again. One real-time read and one search.
 */
export async function sessionTurns(
  es: Client,
  indices: Pick<IndexNames, 'memories' | 'tombstones'>,
  tenant: string,
  sourceId: string,
  hashes: string[],
): Promise<{ stored: Map<string, number | undefined>; fragments: Set<string>; forgotten: Set<string>; next: number }> {
  const [{ stored: fragments, deleted: forgotten }, memories] = await Promise.all([
    hashes.length ? storedFragments(es, indices, tenant, hashes) : { stored: new Set<string>(), deleted: new Set<string>() },
    es.search({
      index: indices.memories,
      size: 0,
      query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }] } },
      aggs: {
        last: { max: { field: 'provenance.turn_end' } },
        named: {
          filter: { terms: { 'provenance.turn_ids': hashes } },
          aggs: {
            turns: {
              terms: { field: 'provenance.turn_ids', include: hashes, size: Math.max(1, hashes.length) },
              aggs: { one: { top_hits: { size: 1, _source: ['provenance.turn_start', 'provenance.turn_ids'] } } },
            },
          },
        },
      },
    }),
  ]);
  const stored = new Map<string, number | undefined>([...fragments].map((hash) => [hash, undefined]));
  type Bucket = { key: string; one?: { hits?: { hits?: { _source?: { provenance?: { turn_start?: number; turn_ids?: string[] } } }[] } } };
  const named = memories.aggregations?.named as { turns?: { buckets?: Bucket[] } } | undefined;
  for (const bucket of named?.turns?.buckets ?? []) {
    // A memory of several turns starts at its first: this turn is as far on as it is in the list.
    const provenance = bucket.one?.hits?.hits?.[0]?._source?.provenance;
    const offset = provenance?.turn_ids?.indexOf(bucket.key) ?? -1;
    stored.set(bucket.key, provenance?.turn_start !== undefined && offset >= 0 ? provenance.turn_start + offset : undefined);
  }
  const last = (memories.aggregations?.last as { value?: number | null } | undefined)?.value;
  return { stored, fragments, forgotten, next: last === null || last === undefined ? 0 : last + 1 };
}

/**
 * Which of these turns have their active fragment (`mem_<hash>`) stored in the tenant, or had it
 * deleted (`deleted`: those of them with a tombstone); with `ownJob`, the fragments that job wrote
 * are left out (they are its own write's).
 */
async function storedFragments(
  es: Client,
  indices: Pick<IndexNames, 'memories' | 'tombstones'>,
  tenant: string,
  hashes: string[],
  ownJob?: string,
): Promise<{ stored: Set<string>; deleted: Set<string> }> {
  const ids = hashes.map((hash) => `mem_${hash}`);
  // A fragment deleted through the API (its tombstone, lib/memories.ts) counts as stored: sent again, it is not written back.
  const { docs } = await es.mget<{ tenant?: string; provenance?: { job_id?: string } }>({
    docs: [indices.memories, indices.tombstones].flatMap((index) => ids.map((id) => ({ _index: index, _id: id, _source: ['tenant', 'provenance.job_id'] }))),
  });
  const stored = (doc: (typeof docs)[number]) =>
    'found' in doc && doc.found && doc._source?.tenant === tenant && !(ownJob && doc._source.provenance?.job_id === ownJob);
  const hashesOf = (found: typeof docs) => new Set(found.flatMap((doc) => (stored(doc) ? [doc._id.slice('mem_'.length)] : [])));
  // The answer follows the request's order: the memories' half, then the tombstones' (an alias's hits name its index).
  return { stored: hashesOf(docs), deleted: hashesOf(docs.slice(ids.length)) };
}

/**
 * Tex's "active" tier: every turn becomes an episode memory at once (or, for stated preferences,
 * each a preference memory: write-preferences.ts), searchable when this returns
 * (a refresh shared with the other active writes of this worker, not the next scheduled one: see
 * SharedRefresh), before the slower passive extraction runs in the rest of the workflow.
 */
export function createWriteActiveActivity(deps: ActivityDeps) {
  const memoriesRefresh = new SharedRefresh(deps.es, deps.indices.memories);
  const leases = new Leases(deps.es, deps.indices.sequences);
  const writePreferences = createWritePreferences(deps, memoriesRefresh, leases);
  return async function writeActiveFragments(input: StageInput): Promise<ActiveWriteResult> {
    if (input.request.statedAs === 'preferences') return writePreferences(input);
    const { jobId, sourceId, request } = input;
    if (!request.blobKey) throw badInput('an active write needs the turns in the blob store');
    const conversation = Conversation.parse(await getJson(deps.blobs, request.blobKey));
    const turns = conversation.messages.map((turn, i) => ({ turn, hash: turn.turnId ?? fragmentHash(request.tenant, request.scope, turn.role, turn.content, turn.timestamp), position: turn.index ?? i }));
    const fragmentIds = turns.map(({ hash }) => hash);

    // Fragments this job wrote are its own: an attempt retried after the first one's write (a worker
    // or Temporal gone before its completion was recorded) still hands them to the passive stages,
    // rather than finding them stored and leaving the write without its enrichment for good.
    const { stored } = await storedFragments(deps.es, deps.indices, request.tenant, fragmentIds, jobId);
    const seen = new Set<string>();
    const fresh = turns.filter(({ hash }) => {
      if (stored.has(hash) || seen.has(hash)) return false;
      seen.add(hash);
      return true;
    });
    if (fresh.length === 0) return { fragmentIds, newTurns: 0, tokensIn: 0 };

    const texts = fresh.map(({ turn }) => turnText(turn));
    // The caller waits for an active write, so under another model's index it is not held back: the
    // fragments are stored without vectors (BM25 finds them at once) and the reindex embeds them.
    const vectorsFit = deps.embedder && !(await deps.embeddingMatch.mismatchOf('memories', { fresh: true }));
    const vectors = vectorsFit ? await deps.embedder!.embed(texts, { urgent: true }) : undefined;
    const now = new Date().toISOString();
    const docs: StoredMemory[] = fresh.map(({ turn, hash, position }, i) => ({
      id: `mem_${hash}`,
      tenant: request.tenant,
      text: texts[i]!,
      stems: stemmedText(texts[i]),
      type: 'episode',
      confidence: 1,
      entities: [],
      scope: memoryScope(request.tenant, request.scope),
      provenance: {
        ...requestProvenance(request, sourceId, jobId),
        // The mapping says `date`: a free-form timestamp would fail the whole write, so it is read or dropped.
        document_date: isoDate(turn.timestamp) ?? request.documentDate,
        chunk_index: position,
        turn_start: position,
        turn_end: position,
        turn_ids: [hash],
        speakers: [turn.name ?? turn.role],
        timestamp: isoDate(turn.timestamp),
      },
      metadata: request.metadata,
      created_at: now,
      updated_at: null,
      ...(vectors && deps.embedder ? { embedding: vectors[i], embedding_model: deps.embedder.model } : {}),
    }));
    await assertNotBeingDeleted(leases, request.tenant, sourceId);
    const response = await deps.es.bulk({
      operations: docs.flatMap((doc) => [{ index: { _index: deps.indices.memories, _id: doc.id } }, doc]),
    });
    if (response.errors) throw bulkFailure(response, 'active fragments');
    await memoriesRefresh.refresh();

    const passiveBlobKey = `${request.tenant}/jobs/${jobId}/passive-turns.json`;
    await putJson(deps.blobs, passiveBlobKey, { ...conversation, messages: fresh.map(({ turn, position }) => ({ ...turn, index: position })) });
    return { fragmentIds, newTurns: fresh.length, tokensIn: texts.reduce((sum, text) => sum + countTokens(text), 0), passiveBlobKey };
  };
}
