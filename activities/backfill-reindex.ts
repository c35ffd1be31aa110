import { Context, heartbeat } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { estypes } from '@elastic/elasticsearch';
import type { ReindexPlan } from '../lib/backfill/request';
import { embeddingText } from '../lib/domain/memory';
import { ALWAYS_REFRESHED_INTERVAL, versionedIndex } from '../lib/elasticsearch/indices';
import { entitiesMapping, memoriesMapping } from '../lib/elasticsearch/mappings';
import type { Embedder } from '../lib/models/embedder';
import { embeddingSpec } from '../lib/models/providers';
import { conflict, upstreamFailure } from '../lib/errors';
import { stemmedText } from '../lib/search/analysis';
import { assertBulkOk, withRun, type BatchOutcome, type MemoryBatch } from './backfill-reembed';
import type { ActivityDeps } from './deps';

type Source = Record<string, unknown>;

/** Whether an index's mapping is the strict one a reindex builds, for the same model and schema. */
function builtAs(actual: estypes.MappingTypeMapping | undefined, wanted: estypes.MappingTypeMapping): boolean {
  const meta = (mapping: estypes.MappingTypeMapping | undefined) => {
    const { schema_version, embedding_model, embedding_dims } = (mapping?._meta ?? {}) as Record<string, unknown>;
    return JSON.stringify([schema_version, embedding_model, embedding_dims]);
  };
  return String(actual?.dynamic) === 'strict' && meta(actual) === meta(wanted);
}

/** The memories index's move, and the entities index's when it moves alongside. */
const movesOf = (plan: ReindexPlan) => [plan, ...(plan.entities ? [plan.entities] : [])];

/** Not found, as the activity's client says it (over the worker's connection it may be the bare gRPC status). */
const isNotFound = (error: unknown) =>
  error instanceof WorkflowNotFoundError || (error as { name?: string }).name === 'WorkflowNotFoundError' || (error as { code?: number }).code === 5 || (error as { cause?: { code?: number } }).cause?.code === 5;

/** The backfill that built a next version (its workflow id), when one recorded itself. */
const ownerOf = (mapping: estypes.MappingTypeMapping | undefined) => ((mapping?._meta ?? {}) as { reindex_owner?: string }).reindex_owner;

/** Whether any alias points to an index: one that does is never deleted. */
const aliased = (state: estypes.IndicesIndexState) => Object.keys(state.aliases ?? {}).length > 0;

/** The version number of a versioned index (`<alias>-v<n>`). */
const versionOf = (index: string) => {
  const match = /-v(\d+)$/.exec(index);
  return match ? Number(match[1]) : undefined;
};

/**
 * Reindex without Elasticsearch's reindex module (not available here, and no painless either): the
 * backfill walks the current index with PIT + search_after, bulk-writes each batch into the next
 * versioned index, then moves the alias in one atomic updateAliases call. The new index is built for
 * the worker's embedder, so this is also how an embedding model change completes: every vector made
 * by another model is re-embedded on the way, and the entities index (vectors too) moves alongside.
 */
export function createReindexActivities(deps: ActivityDeps) {
  const alias = () => deps.indices.memories;

  async function currentIndex(name: string): Promise<string> {
    const aliases = await deps.es.indices.getAlias({ name });
    const entries = Object.entries(aliases);
    const writable = entries.find(([, value]) => value.aliases[name]?.is_write_index) ?? entries[0];
    if (!writable) throw upstreamFailure(`the alias ${name} points to no index`);
    return writable[0];
  }

  /**
   * The next version's index behind an alias, created if missing. A retry finds it and reuses it, if
   * it is what this reindex would build (a strict mapping for the same model): an index of that name
   * that Elasticsearch made on its own (a copy that landed after a stopped reindex deleted its target)
   * is deleted and built afresh, unless an alias points to it.
   */
  async function nextVersion(name: string, mappings: estypes.MappingTypeMapping, owner: string): Promise<{ alias: string; source: string; target: string }> {
    const source = await currentIndex(name);
    const version = versionOf(source) ?? 0;
    const target = versionedIndex(name, version + 1);
    const existing = (await deps.es.indices.get({ index: target }, { ignore: [404] }))[target];
    const builder = ownerOf(existing?.mappings);
    await refuseIfBuiltByAnother(builder, owner, target);
    // Another reindex's that ended without removing it (terminated): built afresh for this one.
    const reusable = existing !== undefined && builtAs(existing.mappings, mappings) && (builder === undefined || builder === owner);
    if (existing && !reusable) {
      if (aliased(existing)) throw upstreamFailure(`${target} is behind an alias but is not the index a reindex builds: check it by hand`);
      await deps.es.indices.delete({ index: target }, { ignore: [404] });
    }
    if (!reusable) {
      const settings = Object.values(await deps.es.indices.getSettings({ index: source }))[0]?.settings?.index;
      await deps.es.indices
        .create({
          index: target,
          settings: {
            number_of_shards: settings?.number_of_shards ?? 1,
            number_of_replicas: settings?.number_of_replicas ?? 0,
            // Memories and entities are searched while written (ALWAYS_REFRESHED); an interval set by hand is kept.
            refresh_interval: settings?.refresh_interval ?? ALWAYS_REFRESHED_INTERVAL,
          },
          mappings: { ...mappings, dynamic: 'strict', _meta: { ...mappings._meta, reindex_owner: owner } },
        })
        .catch((error) => {
          if ((error as { body?: { error?: { type?: string } } }).body?.error?.type !== 'resource_already_exists_exception') throw error;
        });
      // Created at the same moment by another reindex (index creation is atomic: one of them made it).
      const made = (await deps.es.indices.getMapping({ index: target }))[target]?.mappings;
      await refuseIfBuiltByAnother(ownerOf(made), owner, target);
    }
    return { alias: name, source, target };
  }

  /**
   * One reindex at a time: two would copy into the same next version and swap the same aliases, the
   * slower one copying old memories over edits made after the faster one's swap (and deleted ones back).
   * The API refuses a second on-demand reindex, but a schedule starts its runs under ids of their own:
   * so the next version records the backfill building it, and another one still running refuses this.
   */
  async function refuseIfBuiltByAnother(builder: string | undefined, owner: string, target: string): Promise<void> {
    if (builder === undefined || builder === owner) return;
    const running = await Context.current()
      .client.workflow.getHandle(builder)
      .describe()
      .then((description) => description.status.name === 'RUNNING')
      .catch((error) => {
        if (isNotFound(error)) return false;
        throw upstreamFailure(`could not tell whether the reindex building ${target} (${builder}) still runs: ${(error as Error).message}`);
      });
    if (running) throw conflict(`another reindex (${builder}) is building ${target}: one reindex runs at a time, so this one stopped before changing anything`);
  }

  /** Creates the next versions of the memories and entities indices, their `_meta` naming the worker's model and this backfill. */
  async function prepareReindex(startedAt: string): Promise<ReindexPlan> {
    const embedding = embeddingSpec(deps.embedder);
    // The backfill's workflow id: the same across its runs (continue-as-new) and its activity's retries.
    const owner = Context.current().info.workflowExecution?.workflowId ?? 'outside-a-workflow';
    const memories = await nextVersion(alias(), memoriesMapping(embedding), owner);
    const entities = await nextVersion(deps.indices.entities, entitiesMapping(embedding), owner);
    return { ...memories, startedAt, entities };
  }

  /** Copies one batch into the new index; vectors from another model than the worker's are re-embedded. */
  async function copyMemories(batch: MemoryBatch & { target: string }): Promise<BatchOutcome> {
    const source = batch.index ?? alias();
    // Copied by this run already (a retried batch) means present in the target with this run's marker.
    const inTarget = await deps.es.mget<{ backfill_runs?: string[] }>({ index: batch.target, ids: batch.ids, _source_includes: ['backfill_runs'] });
    const done = new Set(inTarget.docs.filter((doc) => 'found' in doc && doc.found && doc._source?.backfill_runs?.includes(batch.runId)).map((doc) => doc._id));
    const ids = batch.ids.filter((id) => !done.has(id));
    if (ids.length === 0) return { processed: 0, skipped: batch.ids.length };
    const { docs } = await deps.es.mget<Source>({ index: source, ids });
    const toCopy = docs.filter((doc): doc is estypes.GetGetResult<Source> => 'found' in doc && doc.found && Boolean(doc._source));
    if (toCopy.length === 0) return { processed: 0, skipped: batch.ids.length };

    const bodies = await withWorkerVectors(deps.embedder, toCopy.map((doc) => doc._source!), memoryText);
    heartbeat({ copied: toCopy.length });
    const response = await deps.es.bulk({
      operations: toCopy.flatMap((doc, i) => [
        { index: { _index: batch.target, _id: doc._id } },
        { ...bodies[i], ...currentStems(doc._source!), backfill_runs: withRun(doc._source!.backfill_runs as string[] | undefined, batch.runId) },
      ]),
    });
    assertBulkOk(response, 'copied memories');
    return { processed: toCopy.length, skipped: batch.ids.length - toCopy.length };
  }

  /** Moves the aliases (reads and writes) of memories and entities to the new indices in one atomic step. Idempotent. */
  async function swapMemoriesAlias(plan: ReindexPlan): Promise<void> {
    const moves = movesOf(plan);
    await deps.es.indices.refresh({ index: moves.map((move) => move.target) });
    const pending: typeof moves = [];
    for (const move of moves) {
      const current = await deps.es.indices.getAlias({ name: move.alias });
      if (!(Object.keys(current).length === 1 && current[move.target])) pending.push(move);
    }
    if (pending.length === 0) return;
    await deps.es.indices.updateAliases({
      actions: pending.flatMap((move) => [
        { remove: { index: move.source, alias: move.alias } },
        { add: { index: move.target, alias: move.alias, is_write_index: true } },
      ]),
    });
  }

  /**
   * Copies what was written to the old index while the walk ran (its PIT could not see it). Runs after
   * the swap, when no new writes reach the old index. A memory rewritten in the new index after the
   * swap is newer than the old index's copy and is kept. Another model's vectors (a worker still on
   * the old model) and missing ones (written while the model change was pending) are embedded anew.
   */
  async function catchUpMemories(plan: ReindexPlan & { runId: string }): Promise<number> {
    return catchUp({ source: plan.source, target: plan.target, stampFields: ['created_at', 'updated_at'], text: memoryText }, plan, (hit) => ({
      ...currentStems(hit),
      backfill_runs: withRun(hit.backfill_runs as string[] | undefined, plan.runId),
    }));
  }

  /** Entities created or changed in the old index during the run. */
  async function catchUpEntities(plan: ReindexPlan): Promise<number> {
    if (!plan.entities) return 0;
    return catchUp({ ...plan.entities, stampFields: ['first_seen_at', 'last_seen_at'], text: entityText }, plan);
  }

  async function catchUp(
    index: { source: string; target: string; stampFields: [string, string]; text: (doc: Source) => string },
    plan: ReindexPlan,
    marked: (doc: Source) => Source = () => ({}),
  ): Promise<number> {
    // Writes of the last second before the swap may not be searchable yet: make them so first.
    await deps.es.indices.refresh({ index: index.source });
    const [created, updated] = index.stampFields;
    const query: estypes.QueryDslQueryContainer = {
      bool: { should: [{ range: { [created]: { gte: plan.startedAt } } }, { range: { [updated]: { gte: plan.startedAt } } }], minimum_should_match: 1 },
    };
    let searchAfter: estypes.SortResults | undefined;
    let copied = 0;
    for (;;) {
      const page = await deps.es.search<Source>({ index: index.source, query, sort: [{ id: 'asc' }], size: 200, search_after: searchAfter });
      const hits = page.hits.hits;
      if (hits.length === 0) break;
      searchAfter = hits[hits.length - 1]!.sort;
      const current = await deps.es.mget<Source>({ index: index.target, ids: hits.map((hit) => hit._id!), _source_includes: [created, updated] });
      const targetStamp = new Map(current.docs.map((doc) => [doc._id, 'found' in doc && doc.found ? lastWrite(doc._source, created, updated) : '']));
      const newer = hits.filter((hit) => lastWrite(hit._source, created, updated) > (targetStamp.get(hit._id!) ?? ''));
      if (newer.length === 0) continue;
      const bodies = await withWorkerVectors(deps.embedder, newer.map((hit) => hit._source!), index.text);
      const response = await deps.es.bulk({
        operations: newer.flatMap((hit, i) => [{ index: { _index: index.target, _id: hit._id } }, { ...bodies[i], ...marked(hit._source!) }]),
      });
      assertBulkOk(response, `caught-up documents of ${index.source}`);
      copied += newer.length;
      heartbeat({ copied });
    }
    await deps.es.indices.refresh({ index: index.target });
    return copied;
  }

  /**
   * A memory copied early in the run and then deleted from the old index would come back with the
   * swap. After the swap nothing writes to the old index any more, so every memory this run copied
   * that the old index no longer holds was deleted meanwhile: it is deleted from the new one too.
   */
  async function dropDeletedMemories(plan: ReindexPlan & { runId: string }): Promise<number> {
    await deps.es.indices.refresh({ index: plan.target });
    let searchAfter: estypes.SortResults | undefined;
    let dropped = 0;
    for (;;) {
      const page = await deps.es.search({
        index: plan.target,
        query: { term: { backfill_runs: plan.runId } },
        sort: [{ id: 'asc' }],
        size: 1000,
        _source: false,
        search_after: searchAfter,
        track_total_hits: false,
      });
      const hits = page.hits.hits;
      if (hits.length === 0) break;
      searchAfter = hits[hits.length - 1]!.sort;
      const inSource = await deps.es.mget({ index: plan.source, ids: hits.map((hit) => hit._id!), _source: false });
      const gone = inSource.docs.filter((doc) => !('found' in doc && doc.found)).map((doc) => doc._id);
      heartbeat({ checked: hits.length, dropped });
      if (gone.length === 0) continue;
      const response = await deps.es.bulk({ operations: gone.map((id) => ({ delete: { _index: plan.target, _id: id } })) });
      assertBulkOk(response, 'memories deleted during the reindex');
      dropped += gone.length;
    }
    if (dropped) await deps.es.indices.refresh({ index: plan.target });
    return dropped;
  }

  /**
   * The end of a reindex that swapped and caught up: its new versions are marked complete (in their
   * `_meta`), and the versions before the one it left go (vN-1 and older once vN+1 took over). The
   * one it left stays, a way back while the new one proves itself; older ones only if that one was
   * itself completed by its reindex (one that failed after its swap may have left writes in the
   * version before it, which nothing copied). Only indices no alias points to are deleted, so disk
   * no longer fills with every version ever built. Answers the indices removed.
   */
  async function removeOldIndexVersions(plan: ReindexPlan): Promise<string[]> {
    const removed: string[] = [];
    for (const move of movesOf(plan)) {
      const mappings = await deps.es.indices.getMapping({ index: [move.target, move.source] }, { ignore: [404] });
      const meta = (index: string) => (mappings[index]?.mappings?._meta ?? {}) as Record<string, unknown>;
      await deps.es.indices.putMapping({ index: move.target, _meta: { ...meta(move.target), reindex_completed_at: new Date().toISOString() } });
      const kept = versionOf(move.source);
      if (kept === undefined || !meta(move.source).reindex_completed_at) continue;
      const indices = await deps.es.indices.get({ index: `${move.alias}-v*`, expand_wildcards: ['open', 'closed'] }, { ignore: [404] });
      for (const [index, state] of Object.entries(indices)) {
        const version = versionOf(index);
        if (version === undefined || index !== versionedIndex(move.alias, version) || version >= kept) continue;
        if (aliased(state)) continue;
        await deps.es.indices.delete({ index }, { ignore: [404] });
        removed.push(index);
      }
    }
    return removed;
  }

  /**
   * A reindex stopped before its swap (cancelled, or failed): the half-filled next versions go, unless
   * an alias points to them. A later reindex builds them afresh. Answers the indices removed.
   */
  async function dropUnswappedTargets(plan: ReindexPlan): Promise<string[]> {
    const removed: string[] = [];
    for (const move of movesOf(plan)) {
      const target = await deps.es.indices.get({ index: move.target }, { ignore: [404] });
      const state = target[move.target];
      if (!state || aliased(state)) continue;
      await deps.es.indices.delete({ index: move.target }, { ignore: [404] });
      removed.push(move.target);
    }
    return removed;
  }

  return { prepareReindex, copyMemories, swapMemoriesAlias, catchUpMemories, catchUpEntities, dropDeletedMemories, removeOldIndexVersions, dropUnswappedTargets };
}

/**
 * A memory's stems as today's analysis makes them: a memory stored before an analysis change (words
 * with combining marks, apostrophes or invisible characters: lib/search/analysis.ts) is found by new
 * queries again once a reindex has copied it.
 */
const currentStems = (doc: Source) => ({
  stems: stemmedText(String(doc.text ?? '')),
  context_stems: stemmedText(typeof doc.context === 'string' ? doc.context : undefined),
});

export const memoryText = (doc: Source) => embeddingText({ text: String(doc.text ?? ''), context: typeof doc.context === 'string' ? doc.context : undefined });
/** An entity's vector stands for its name; the current (fullest) name, as merges may have changed it. */
export const entityText = (doc: Source) => String(doc.name ?? '');

/**
 * Documents as the new index takes them: vectors of another model than the worker's (or none) are
 * replaced by the worker's, in one embedding call. Without an embedder, vectors are dropped: the new
 * index's mapping has no model to match them.
 */
export async function withWorkerVectors(embedder: Embedder | undefined, docs: Source[], text: (doc: Source) => string): Promise<Source[]> {
  if (!embedder) return docs.map(({ embedding: _vector, embedding_model: _model, ...rest }) => rest);
  const stale = docs.filter((doc) => doc.embedding_model !== embedder.model || !doc.embedding);
  if (stale.length === 0) return docs;
  const vectors = await embedder.embed(stale.map(text));
  const fresh = new Map(stale.map((doc, i) => [doc, vectors[i]]));
  return docs.map((doc) => (fresh.has(doc) ? { ...doc, embedding: fresh.get(doc), embedding_model: embedder.model } : doc));
}

/** ISO timestamps compare as strings; the later of the two stamps is the last write. */
function lastWrite(doc: Source | undefined, created: string, updated: string): string {
  const first = String(doc?.[created] ?? '');
  const last = String(doc?.[updated] ?? '');
  return last > first ? last : first;
}
