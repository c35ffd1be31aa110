import type { Client } from '@elastic/elasticsearch';
import { getDocument } from '../elasticsearch/client';
import type { IndexNames } from '../elasticsearch/indices';
import { notFound } from '../errors';
import type { Entity } from './entity';

/** The tenant's entities read: one by id, or a page of them by name or type, most mentioned first. */
export class EntityStore {
  constructor(
    private readonly es: Client,
    private readonly indices: IndexNames,
  ) {}

  async get(tenant: string, id: string): Promise<Entity> {
    const found = await getDocument<Entity>(this.es, { index: this.indices.entities, id, _source_excludes: ['embedding'] }, tenant);
    if (!found) throw notFound(`entity ${id}`);
    return found.source;
  }

  async list(tenant: string, options: { q?: string; type?: string; size: number; from: number }): Promise<{ entities: Entity[]; total: number }> {
    const filter: object[] = [{ term: { tenant } }];
    if (options.type) filter.push({ term: { type: options.type } });
    const must = options.q ? [{ multi_match: { query: options.q, fields: ['name^2', 'aliases'] } }] : [];
    const response = await this.es.search<Entity>({
      index: this.indices.entities,
      query: { bool: { filter, must } },
      sort: options.q ? undefined : [{ mention_count: { order: 'desc', unmapped_type: 'integer' } }, { id: 'asc' }],
      from: options.from,
      size: options.size,
      _source: { excludes: ['embedding'] },
      track_total_hits: true,
    });
    const total = typeof response.hits.total === 'number' ? response.hits.total : (response.hits.total?.value ?? 0);
    return { entities: response.hits.hits.map((hit) => hit._source!), total };
  }
}
