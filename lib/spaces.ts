import { randomUUID } from 'node:crypto';
import type { Client, estypes } from '@elastic/elasticsearch';
import { conflict, notFound } from './errors';
import { sha256 } from './ids';
import type { SourceStore } from './sources';

/**
 * Named spaces within a tenant (the Crosmos SDK's `spaces`). A space is what memories are filed under
 * by `space_id` (Crosmos conversations and sources, Memsolus' workspace_id); naming one is optional:
 * anything may be sent to any space id, so data kept under a space id elsewhere moves without
 * creating it first. A name is taken once per tenant, as Crosmos' are unique per organisation.
 */
export interface Space {
  id: string;
  tenant: string;
  name: string;
  description?: string;
  meta?: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export interface NewSpace {
  name: string;
  description?: string | null;
  meta?: Record<string, unknown> | null;
}

/** How many rounds of lib/sources.ts deleteAll (each up to its BULK sources) one space delete runs. */
const DELETE_ROUNDS = 20;

/** A space's document id: its name within its tenant, so two creates of one name cannot both succeed. */
const documentIdOf = (tenant: string, name: string) => `space_${sha256('space', tenant, name).slice(0, 40)}`;

export class SpaceStore {
  constructor(
    private readonly es: Client,
    private readonly index: string,
    private readonly sources: SourceStore,
  ) {}

  /** A new space with a fresh UUID; 409 when the tenant has one of that name. */
  async create(tenant: string, input: NewSpace): Promise<Space> {
    const now = new Date().toISOString();
    const space: Space = {
      id: randomUUID(),
      tenant,
      name: input.name,
      ...(input.description != null ? { description: input.description } : {}),
      ...(input.meta != null ? { meta: input.meta } : {}),
      created_at: now,
      updated_at: now,
    };
    const response = await this.es.index({ index: this.index, id: documentIdOf(tenant, input.name), document: space, op_type: 'create', refresh: 'wait_for' }, { ignore: [409] });
    if (response.result !== 'created') throw conflict(`a space named ${JSON.stringify(input.name)} exists: names are unique within an organisation`);
    return space;
  }

  /** A page of the tenant's spaces, oldest first, or the one of a name (0 or 1). */
  async list(tenant: string, options: { name?: string; from: number; size: number }): Promise<{ spaces: Space[]; total: number }> {
    const filter: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
    if (options.name !== undefined) filter.push({ term: { name: options.name } });
    const found = await this.es.search<Space>({
      index: this.index,
      query: { bool: { filter } },
      sort: [{ created_at: 'asc' }, { id: 'asc' }],
      from: options.from,
      size: options.size,
      track_total_hits: true,
    });
    const total = typeof found.hits.total === 'number' ? found.hits.total : (found.hits.total?.value ?? 0);
    return { spaces: found.hits.hits.flatMap((hit) => (hit._source ? [hit._source] : [])), total };
  }

  async get(tenant: string, id: string): Promise<Space> {
    const found = await this.find(tenant, id);
    if (!found) throw notFound(`space ${id}`);
    return found.space;
  }

  /**
   * The space with everything filed under it: its sources, with their memories and their mentions in
   * entities, as deleting each source deletes it; its name last, so a delete cut short is finished by
   * sending it again. A space never created but holding data is emptied the same way. 409 while a job
   * of a source in it is queued or running, or when more sources are left than one request deletes.
   */
  async delete(tenant: string, id: string): Promise<void> {
    const found = await this.find(tenant, id);
    const deleted = (await this.sources.deleteEvery(tenant, { space_id: id }, `space ${id}`, DELETE_ROUNDS)).sources_deleted;
    if (!found && deleted === 0) throw notFound(`space ${id}`);
    if (found) await this.es.delete({ index: this.index, id: found.documentId, refresh: 'wait_for' }, { ignore: [404] });
  }

  private async find(tenant: string, id: string): Promise<{ space: Space; documentId: string } | undefined> {
    const found = await this.es.search<Space>({ index: this.index, query: { bool: { filter: [{ term: { tenant } }, { term: { id } }] } }, size: 1 });
    const hit = found.hits.hits[0];
    return hit?._source ? { space: hit._source, documentId: hit._id! } : undefined;
  }
}
