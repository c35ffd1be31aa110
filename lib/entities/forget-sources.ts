import type { Client, estypes } from '@elastic/elasticsearch';
import type { IndexNames } from '../elasticsearch/indices';
import { writeMatching, type FoundWrite } from '../elasticsearch/matching-writes';
import { conflict } from '../errors';
import { KEPT_SOURCES } from './entity';

/**
 * Each entity that names one of the sources loses them; one left naming no source is deleted.
 * Conditional on the version read (an entity a job updates meanwhile is read again on the next
 * pass), a page at a time, until none is left to change. An entity names only its latest
 * KEPT_SOURCES sources: one that had more — among those the sources' memories named (`mentioned`),
 * so a source older than the ids kept counts too — is recounted from the memories that still name
 * it (the sources' own are gone by now), so it is kept while older sources' memories name it.
 */
export async function forgetSourcesInEntities(
  es: Client,
  indices: IndexNames,
  tenant: string,
  ids: string[],
  mentioned: string[],
  /** Only these entities lose the sources (a memory deleted from a source that still names others). */
  only?: string[],
): Promise<{ deleted: number; updated: number }> {
  const gone = new Set(ids);
  const counts = { deleted: 0, updated: 0 };
  // Written or left as they are: an entity of `mentioned` matches still.
  const settled: string[] = [];
  await writeMatching<{ source_ids?: string[]; mention_count?: number }>(es, {
    index: indices.entities,
    query: () => ({
      bool: {
        filter: [{ term: { tenant } }, ...(only ? [{ ids: { values: only } }] : [])],
        should: [{ terms: { source_ids: ids } }, { ids: { values: mentioned } }],
        minimum_should_match: 1,
        must_not: [{ ids: { values: settled } }],
      },
    }),
    fields: ['source_ids', 'mention_count'],
    pageSize: 1000,
    writesOf: async (hits) => {
      const truncated = (hit: (typeof hits)[number]) => (hit._source?.mention_count ?? 0) > (hit._source?.source_ids?.length ?? 0);
      const recounted = await sourcesNaming(es, indices, tenant, hits.filter(truncated).map((hit) => hit._id!));
      return hits.map((hit): FoundWrite | undefined => {
        const sourceIds = hit._source?.source_ids ?? [];
        let remaining = sourceIds.filter((sourceId) => !gone.has(sourceId));
        // mention_count counts distinct sources, each once, so each source gone is one fewer.
        let mentionCount = (hit._source?.mention_count ?? sourceIds.length) - (sourceIds.length - remaining.length);
        const older = recounted.get(hit._id!);
        if (older) {
          remaining = [...new Set([...older.latest.filter((sourceId) => !remaining.includes(sourceId)).reverse(), ...remaining])].slice(-KEPT_SOURCES);
          mentionCount = older.count;
        } else if (remaining.length === sourceIds.length) {
          // Named by a memory of the sources, but naming none of them and holding all its sources: as it was.
          settled.push(hit._id!);
          return undefined;
        }
        if (remaining.length === 0) return 'delete';
        return { update: { source_ids: remaining, mention_count: Math.max(remaining.length, mentionCount) } };
      });
    },
    written: (id, action) => {
      counts[action === 'delete' ? 'deleted' : 'updated'] += 1;
      settled.push(id);
    },
    what: 'update an entity of deleted sources',
    // Changed under every page (another delete of the same sources, a job writing them): the caller's to send again.
    contendedPages: 20,
    exhausted: () => conflict('entities of these sources kept changing while being deleted (another request or job is writing them); send the request again'),
  });
  return counts;
}

/**
 * After a memory of a source is deleted, or edited to name other entities: each entity it named that no
 * other memory of the source still names loses the source, as if the source were deleted for it (one
 * left naming no source is deleted), so a name only deleted memories held is not listed any more.
 */
export async function forgetUnnamedInEntities(es: Client, indices: IndexNames, tenant: string, sourceId: string, entityIds: string[]): Promise<void> {
  if (entityIds.length === 0) return;
  const response = await es.search<unknown, { named: estypes.AggregationsStringTermsAggregate }>({
    index: indices.memories,
    size: 0,
    query: { bool: { filter: [{ term: { tenant } }, { term: { 'provenance.source_id': sourceId } }, { terms: { 'entities.id': entityIds } }] } },
    aggs: { named: { terms: { field: 'entities.id', include: entityIds, size: entityIds.length } } },
  });
  const buckets = response.aggregations?.named.buckets;
  const named = new Set(Array.isArray(buckets) ? buckets.map((bucket) => String(bucket.key)) : []);
  const unnamed = entityIds.filter((id) => !named.has(id));
  if (unnamed.length > 0) await forgetSourcesInEntities(es, indices, tenant, [sourceId], unnamed, unnamed);
}

/** For each entity, the sources whose memories name it: the latest KEPT_SOURCES, newest first, and how many in all. */
async function sourcesNaming(es: Client, indices: IndexNames, tenant: string, entityIds: string[]): Promise<Map<string, { latest: string[]; count: number }>> {
  if (entityIds.length === 0) return new Map();
  type Bucket = { key: string; sources: { buckets: { key: string }[] }; count: { value: number } };
  const response = await es.search<unknown, { entities: { buckets: Bucket[] } }>({
    index: indices.memories,
    size: 0,
    query: { bool: { filter: [{ term: { tenant } }, { terms: { 'entities.id': entityIds } }] } },
    aggs: {
      entities: {
        terms: { field: 'entities.id', include: entityIds, size: entityIds.length },
        aggs: {
          sources: { terms: { field: 'provenance.source_id', size: KEPT_SOURCES, order: { latest: 'desc' } }, aggs: { latest: { max: { field: 'created_at' } } } },
          // Exact up to the threshold (Elasticsearch's most): beyond it, an estimate within a few per cent.
          count: { cardinality: { field: 'provenance.source_id', precision_threshold: 40_000 } },
        },
      },
    },
  });
  const found = new Map<string, { latest: string[]; count: number }>(entityIds.map((id) => [id, { latest: [], count: 0 }]));
  for (const bucket of response.aggregations?.entities.buckets ?? []) {
    found.set(String(bucket.key), { latest: bucket.sources.buckets.map((source) => String(source.key)), count: bucket.count.value });
  }
  return found;
}
