import type { Client, estypes } from '@elastic/elasticsearch';
import { getDocument } from '../elasticsearch/client';
import type { IndexNames } from '../elasticsearch/indices';
import { notFound } from '../errors';
import { filterClauses } from '../search/filters';
import type { SearchFilters } from '../search/plan';
import type { Entity } from './entity';

/** How many entities a listing narrowed to some memories (`namedIn`) reaches: Elasticsearch's terms window. */
const NAMED_WINDOW = 10_000;
/** Stored, not shown: the name's vector, and the merges into an entity not yet finished (lib/entities/splits.ts). */
const UNSHOWN = ['embedding', 'merging'];

export interface EntityListOptions {
  q?: string;
  type?: string;
  size: number;
  from: number;
  /** Only the entities the memories these filters match name (entities are the tenant's, whatever scope named them). */
  namedIn?: SearchFilters;
  /** By name or by when it was first seen; without it, most mentioned first (by relevance with `q`). */
  sort?: { field: 'name' | 'first_seen_at'; order: 'asc' | 'desc' };
}

/** The tenant's entities read: one by id, or a page of them by name or type, most mentioned first. */
export class EntityStore {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
  ) {}

  /** An entity; with `namedIn`, only when a memory those filters match names it. */
  async get(tenant: string, id: string, namedIn?: SearchFilters): Promise<Entity> {
    const found = await getDocument<Entity>(this.es, { index: this.indices.entities, id, _source_excludes: UNSHOWN }, tenant);
    if (!found || (namedIn && !(await this.isNamedIn(tenant, id, namedIn)))) throw notFound(`entity ${id}`);
    return found.source;
  }

  async list(tenant: string, options: EntityListOptions): Promise<{ entities: Entity[]; total: number }> {
    const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
    if (options.type) filter.push({ term: { type: options.type } });
    if (options.namedIn) {
      const ids = await this.idsNamedIn(tenant, options.namedIn);
      if (ids.length === 0) return { entities: [], total: 0 };
      filter.push({ terms: { id: ids } });
    }
    const must = options.q ? [{ multi_match: { query: options.q, fields: ['name^2', 'aliases'] } }] : [];
    const sort: estypes.Sort | undefined = options.sort
      ? [{ [options.sort.field === 'name' ? 'name.raw' : 'first_seen_at']: { order: options.sort.order } }, { id: 'asc' }]
      : options.q
        ? undefined
        : [{ mention_count: { order: 'desc', unmapped_type: 'integer' } }, { id: 'asc' }];
    const response = await this.es.search<Entity>({
      index: this.indices.entities,
      query: { bool: { filter, must } },
      sort,
      from: options.from,
      size: options.size,
      _source: { excludes: UNSHOWN },
      track_total_hits: true,
    });
    const total = typeof response.hits.total === 'number' ? response.hits.total : (response.hits.total?.value ?? 0);
    return { entities: response.hits.hits.map((hit) => hit._source!), total };
  }

  /** The ids of the entities the memories these filters match name (up to NAMED_WINDOW). */
  private async idsNamedIn(tenant: string, filters: SearchFilters): Promise<string[]> {
    const response = await this.es.search<unknown, { named: estypes.AggregationsStringTermsAggregate }>({
      index: this.indices.memories,
      size: 0,
      query: { bool: { filter: filterClauses(tenant, filters) } },
      aggs: { named: { terms: { field: 'entities.id', size: NAMED_WINDOW } } },
    });
    const buckets = response.aggregations?.named.buckets;
    return Array.isArray(buckets) ? buckets.map((bucket) => String(bucket.key)) : [];
  }

  private async isNamedIn(tenant: string, id: string, filters: SearchFilters): Promise<boolean> {
    const { count } = await this.es.count({ index: this.indices.memories, query: { bool: { filter: [...filterClauses(tenant, filters), { term: { 'entities.id': id } }] } } });
    return count > 0;
  }
}
