import { heartbeat } from '@temporalio/activity';
import type { estypes } from '@elastic/elasticsearch';
import type { ReindexPlan } from '../lib/backfill/request';
import { versionedIndex } from '../lib/elasticsearch/indices';
import { memoriesMapping } from '../lib/elasticsearch/mappings';
import { embeddingSpec } from '../lib/models/providers';
import { upstreamFailure } from '../lib/errors';
import { assertBulkOk, withRun, type BatchOutcome, type MemoryBatch } from './backfill-reembed';
import type { ActivityDeps } from './deps';

/**
 * Reindex without Elasticsearch's reindex module (not available here, and no painless either): the
 * backfill walks the current index with PIT + search_after, bulk-writes each batch into the next
 * versioned index, then moves the alias in one atomic updateAliases call.
 */
export function createReindexActivities(deps: ActivityDeps) {
  const alias = () => deps.indices.memories;

  async function currentIndex(): Promise<string> {
    const aliases = await deps.es.indices.getAlias({ name: alias() });
    const entries = Object.entries(aliases);
    const writable = entries.find(([, value]) => value.aliases[alias()]?.is_write_index) ?? entries[0];
    if (!writable) throw upstreamFailure(`the alias ${alias()} points to no index`);
    return writable[0];
  }

  /** Creates the next version's index (idempotent: a retry finds it and reuses it). */
  async function prepareReindex(startedAt: string): Promise<ReindexPlan> {
    const source = await currentIndex();
    const version = Number(/-v(\d+)$/.exec(source)?.[1] ?? '0');
    const target = versionedIndex(alias(), version + 1);
    if (!(await deps.es.indices.exists({ index: target }))) {
      const settings = Object.values(await deps.es.indices.getSettings({ index: source }))[0]?.settings?.index;
      await deps.es.indices
        .create({
          index: target,
          settings: { number_of_shards: settings?.number_of_shards ?? 1, number_of_replicas: settings?.number_of_replicas ?? 0 },
          mappings: { ...memoriesMapping(embeddingSpec(deps.embedder)), dynamic: 'strict' },
        })
        .catch((error) => {
          if ((error as { body?: { error?: { type?: string } } }).body?.error?.type !== 'resource_already_exists_exception') throw error;
        });
    }
    return { alias: alias(), source, target, startedAt };
  }

  /** Copies one batch into the new index; vectors from another model than the worker's are re-embedded. */
  async function copyMemories(batch: MemoryBatch & { target: string }): Promise<BatchOutcome> {
    const source = batch.index ?? alias();
    // Copied by this run already (a retried batch) means present in the target with this run's marker.
    const inTarget = await deps.es.mget<{ backfill_runs?: string[] }>({ index: batch.target, ids: batch.ids, _source_includes: ['backfill_runs'] });
    const done = new Set(inTarget.docs.filter((doc) => 'found' in doc && doc.found && doc._source?.backfill_runs?.includes(batch.runId)).map((doc) => doc._id));
    const ids = batch.ids.filter((id) => !done.has(id));
    if (ids.length === 0) return { processed: 0, skipped: batch.ids.length };
    const { docs } = await deps.es.mget<Record<string, unknown>>({ index: source, ids });
    const toCopy = docs.filter((doc): doc is estypes.GetGetResult<Record<string, unknown>> => 'found' in doc && doc.found && Boolean(doc._source));
    if (toCopy.length === 0) return { processed: 0, skipped: batch.ids.length };

    const embedder = deps.embedder;
    const stale = embedder ? toCopy.filter((doc) => doc._source!.embedding_model !== embedder.model) : [];
    const vectors = stale.length ? await embedder!.embed(stale.map((doc) => String(doc._source!.text))) : [];
    heartbeat({ copied: toCopy.length, embedded: vectors.length });
    const freshVector = new Map(stale.map((doc, i) => [doc._id, vectors[i]]));

    const response = await deps.es.bulk({
      operations: toCopy.flatMap((doc) => {
        const body = { ...doc._source!, backfill_runs: withRun(doc._source!.backfill_runs as string[] | undefined, batch.runId) };
        const vector = freshVector.get(doc._id);
        if (vector) Object.assign(body, { embedding: vector, embedding_model: embedder!.model });
        else if (!embedder) delete (body as { embedding?: unknown }).embedding;
        return [{ index: { _index: batch.target, _id: doc._id } }, body];
      }),
    });
    assertBulkOk(response, 'copied memories');
    return { processed: toCopy.length, skipped: batch.ids.length - toCopy.length };
  }

  /** Moves the alias (reads and writes) to the new index in one atomic step. Idempotent. */
  async function swapMemoriesAlias(plan: ReindexPlan): Promise<void> {
    await deps.es.indices.refresh({ index: plan.target });
    const current = await deps.es.indices.getAlias({ name: plan.alias });
    if (Object.keys(current).length === 1 && current[plan.target]) return;
    await deps.es.indices.updateAliases({
      actions: [
        { remove: { index: plan.source, alias: plan.alias } },
        { add: { index: plan.target, alias: plan.alias, is_write_index: true } },
      ],
    });
  }

  /**
   * Copies what was written to the old index while the walk ran (its PIT could not see it). Runs after
   * the swap, when no new writes reach the old index. A memory rewritten in the new index after the
   * swap is newer than the old index's copy and is kept.
   */
  async function catchUpMemories(plan: ReindexPlan & { runId: string }): Promise<number> {
    const query: estypes.QueryDslQueryContainer = {
      bool: { should: [{ range: { created_at: { gte: plan.startedAt } } }, { range: { updated_at: { gte: plan.startedAt } } }], minimum_should_match: 1 },
    };
    let searchAfter: estypes.SortResults | undefined;
    let copied = 0;
    for (;;) {
      const page = await deps.es.search<Record<string, unknown>>({ index: plan.source, query, sort: [{ id: 'asc' }], size: 200, search_after: searchAfter });
      const hits = page.hits.hits;
      if (hits.length === 0) break;
      searchAfter = hits[hits.length - 1]!.sort;
      const current = await deps.es.mget<Record<string, unknown>>({ index: plan.target, ids: hits.map((hit) => hit._id!), _source_includes: ['created_at', 'updated_at'] });
      const targetStamp = new Map(current.docs.map((doc) => [doc._id, 'found' in doc && doc.found ? lastWrite(doc._source) : '']));
      const newer = hits.filter((hit) => lastWrite(hit._source) > (targetStamp.get(hit._id!) ?? ''));
      if (newer.length === 0) continue;
      const response = await deps.es.bulk({
        operations: newer.flatMap((hit) => [
          { index: { _index: plan.target, _id: hit._id } },
          { ...hit._source, backfill_runs: withRun(hit._source!.backfill_runs as string[] | undefined, plan.runId) },
        ]),
      });
      assertBulkOk(response, 'caught-up memories');
      copied += newer.length;
      heartbeat({ copied });
    }
    await deps.es.indices.refresh({ index: plan.target });
    return copied;
  }

  return { prepareReindex, copyMemories, swapMemoriesAlias, catchUpMemories };
}

/** ISO timestamps compare as strings; the later of created and updated is the last write. */
function lastWrite(doc: Record<string, unknown> | undefined): string {
  const created = String(doc?.created_at ?? '');
  const updated = String(doc?.updated_at ?? '');
  return updated > created ? updated : created;
}
