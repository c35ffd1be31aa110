import type { Request } from 'express';
import type { Scope } from '../../lib/domain/ingest';

/** A stored scope as jobs, sources and memories carry it (snake_case). */
export type StoredScope = Record<string, unknown>;

/** What a read sees of the tenant's data: by container tag (supermemory) or by user (Tex). */
export interface ContainerFilters {
  container_tags?: string[];
  user_id?: string;
}

/**
 * Where supermemory's documents, memories and search API files what is written, and what a request
 * may read back. supermemory's SDKs and Tex's speak the same API: supermemory's containers are tags
 * on the tenant's data, Tex's are its users (tex-containers.ts).
 */
export interface Containers {
  /** The surface its writes are recorded under. */
  surface: string;
  /** The scope a write is stored under, given the containers it names. */
  scopeOf(req: Request, tags: string[] | undefined): Scope;
  /** What a read sees, given the containers it names (filters of search and of sources alike). */
  filtersOf(req: Request, tags: string[] | undefined): ContainerFilters;
  /** What a change naming memories by their content reaches, given the containers it names: those a write would go to. */
  ownFiltersOf(req: Request, tags: string[] | undefined): ContainerFilters;
  /** Whether what is stored under this scope is the request's to read or change, given the container it names. */
  holds(req: Request, scope: StoredScope, tag: string | undefined): boolean;
  /** The containers an answer names for what is stored under this scope. */
  tagsOf(scope: StoredScope | undefined): string[];
  /**
   * The source a document added under this customId to this scope is a version of (StartOptions.versionOf),
   * or undefined for the tenant's own `doc:<customId>`: whose document one customId names.
   */
  sourceOfCustomId(tenant: string, scope: Scope, customId: string | undefined): string | undefined;
}

const containerTags = (scope: StoredScope | undefined) => (Array.isArray(scope?.container_tags) ? scope.container_tags.map(String) : []);

/** supermemory's: a write carries the tags it names; every key of the tenant reads every tag. */
export const supermemoryContainers: Containers = {
  surface: 'supermemory',
  scopeOf: (_req, tags) => ({ containerTags: tags }),
  filtersOf: (_req, tags) => ({ container_tags: tags }),
  ownFiltersOf: (_req, tags) => ({ container_tags: tags }),
  holds: (_req, scope, tag) => tag === undefined || containerTags(scope).includes(tag),
  tagsOf: containerTags,
  // One customId names one document of the tenant, whatever its tags.
  sourceOfCustomId: () => undefined,
};
