import type { IngestRequest, Scope } from './ingest';
import type { MemoryScope, Provenance } from './memory';

/**
 * Scope on the wire and in Elasticsearch is snake_case (`space_id`, …); inside the ingest request it
 * is camelCase. These two functions are the only place that maps one to the other.
 */
export type WireScope = Omit<MemoryScope, 'tenant'>;

/** Each wire scope field's name in an ingest request (and in what a job records of it). */
export const REQUEST_SCOPE_FIELDS = {
  space_id: 'spaceId',
  container_tags: 'containerTags',
  org_id: 'orgId',
  user_id: 'userId',
  customer_id: 'customerId',
  agent_id: 'agentId',
  session_id: 'sessionId',
} as const satisfies Record<keyof WireScope, keyof Scope>;

export function scopeToWire(scope: Scope): WireScope {
  return {
    space_id: scope.spaceId,
    container_tags: scope.containerTags,
    org_id: scope.orgId,
    user_id: scope.userId,
    customer_id: scope.customerId,
    agent_id: scope.agentId,
    session_id: scope.sessionId,
  };
}

export function scopeFromWire(scope: Partial<WireScope>, sessionId?: string): Scope {
  return {
    spaceId: scope.space_id,
    containerTags: scope.container_tags,
    orgId: scope.org_id,
    userId: scope.user_id,
    customerId: scope.customer_id,
    agentId: scope.agent_id,
    sessionId: sessionId ?? scope.session_id,
  };
}

/**
 * A job's scope as the API shows it (its status, summary and listing): snake_case, as everywhere on
 * the wire. Jobs record the ingest request's own (camelCase); either form is read, and only the
 * fields set are kept.
 */
export function wireScopeOf(scope: Record<string, unknown> | undefined): Partial<WireScope> {
  const recorded = (scope ?? {}) as Scope & Partial<WireScope>;
  const wire = scopeToWire({ ...scopeFromWire(recorded), ...definedOnly(recorded) });
  return definedOnly(wire);
}

const definedOnly = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;

/** The scope stored on a memory: the tenant always, plus whatever the request carried. */
export const memoryScope = (tenant: string, scope: Scope): MemoryScope => ({ tenant, ...scopeToWire(scope) });

/** Provenance every memory of a job shares; stages add chunk, character range and turn positions. */
export function requestProvenance(request: IngestRequest, sourceId: string, jobId: string) {
  return {
    source_id: sourceId,
    job_id: jobId,
    document_id: request.documentId,
    document_type: request.documentType,
    document_date: request.documentDate,
    format: request.format,
    surface: request.surface,
    source_url: request.sourceUrl,
    file_name: request.fileName,
  } satisfies Partial<Provenance>;
}
