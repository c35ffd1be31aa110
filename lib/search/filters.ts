import type { estypes } from '@elastic/elasticsearch';
import type { SearchFilters } from './plan';

/** The scope fields a filter names one value of (container tags take several). */
export const SCOPE_FIELDS = ['space_id', 'org_id', 'user_id', 'customer_id', 'agent_id', 'session_id'] as const;

/** The scope fields a listing of values groups by (POST /v1/scopes/list): those, and container tags (a memory counts under each of its tags). */
export const SCOPE_VALUE_FIELDS = [...SCOPE_FIELDS, 'container_tags'] as const;
export type ScopeField = (typeof SCOPE_VALUE_FIELDS)[number];

/**
 * Filters → Elasticsearch filter clauses. The tenant clause is always first and never optional: it
 * comes from the authenticated key, not from the request body.
 */
export function filterClauses(tenant: string, filters: SearchFilters = {}): estypes.QueryDslQueryContainer[] {
  const clauses: estypes.QueryDslQueryContainer[] = [{ term: { tenant } }];
  for (const field of SCOPE_FIELDS) {
    const value = filters[field];
    if (value === undefined) continue;
    // A customer's memories held by no one user are every one of its users' (Synap's customer scope):
    // asked for a user within a customer, those come too.
    if (field === 'user_id' && filters.customer_id !== undefined) {
      clauses.push({ bool: { should: [{ term: { 'scope.user_id': value } }, { bool: { must_not: { exists: { field: 'scope.user_id' } } } }], minimum_should_match: 1 } });
      continue;
    }
    clauses.push({ term: { [`scope.${field}`]: value } });
  }
  if (filters.container_tags?.length) clauses.push({ terms: { 'scope.container_tags': filters.container_tags } });
  if (filters.types?.length) clauses.push({ terms: { type: filters.types } });
  if (filters.categories?.length) clauses.push({ terms: { categories: filters.categories } });
  if (filters.source_ids?.length) clauses.push({ terms: { 'provenance.source_id': filters.source_ids } });
  if (filters.document_ids?.length) clauses.push({ terms: { 'provenance.document_id': filters.document_ids } });
  if (filters.entity_ids?.length) clauses.push({ terms: { 'entities.id': filters.entity_ids } });
  if (filters.created_after || filters.created_before) {
    clauses.push({ range: { created_at: { gte: filters.created_after, lte: filters.created_before } } });
  }
  if (filters.occurred_after || filters.occurred_before) {
    const range = { gte: filters.occurred_after, lte: filters.occurred_before };
    // A memory "happened" on the dates found in its text, else when its turn was said, else on its
    // session's or document's date.
    clauses.push({
      bool: {
        should: [
          { range: { event_dates: range } },
          { bool: { must_not: { exists: { field: 'event_dates' } }, filter: [{ range: { 'provenance.timestamp': range } }] } },
          {
            bool: {
              must_not: [{ exists: { field: 'event_dates' } }, { exists: { field: 'provenance.timestamp' } }],
              should: [{ range: { 'provenance.session_date': range } }, { range: { 'provenance.document_date': range } }],
              minimum_should_match: 1,
            },
          },
        ],
        minimum_should_match: 1,
      },
    });
  }
  for (const [key, value] of Object.entries(filters.metadata ?? {})) {
    const field = `metadata.${key}`;
    // `flattened` indexes leaves as keywords, so numbers and booleans match by their string form.
    clauses.push(Array.isArray(value) ? { terms: { [field]: value.map(String) } } : { term: { [field]: String(value) } });
  }
  return clauses;
}
