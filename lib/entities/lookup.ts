import type { Client, estypes } from '@elastic/elasticsearch';
import { upstreamFailure } from '../errors';
import { nameQuery } from './candidates';
import type { EntityDoc } from './entity';
import type { Stored } from './writer';

/** A lookup's hit: with its name's cosine similarity when it came from the embedding search. */
export type Found = Stored & { score?: number };

/** The tenant's entities a mention of this name could join by name (nameQuery). */
export function nameLookup(tenant: string, normalised: string): estypes.MsearchMultisearchBody {
  return { size: 50, query: nameQuery(tenant, normalised), seq_no_primary_term: true };
}

/** The tenant's entities whose names embed closest to `vector`. */
export function similarityLookup(tenant: string, vector: number[]): estypes.MsearchMultisearchBody {
  return {
    size: 10,
    knn: { field: 'embedding', query_vector: vector, k: 10, num_candidates: 100, filter: [{ term: { tenant } }] },
    seq_no_primary_term: true,
  };
}

/** One search of the entities per body in a single round trip; hits keep their versions and cosine similarity. */
export async function searchEntities(es: Client, index: string, bodies: estypes.MsearchMultisearchBody[]): Promise<Found[][]> {
  if (bodies.length === 0) return [];
  const { responses } = await es.msearch<EntityDoc>({ index, searches: bodies.flatMap((body) => [{}, body]) });
  return responses.map((response, i) => {
    if ('error' in response) throw upstreamFailure(`entity lookup failed: ${response.error.type}: ${response.error.reason}`);
    const knn = Boolean(bodies[i]!.knn);
    return response.hits.hits
      .filter((hit) => hit._source)
      .map((hit) => ({
        doc: hit._source!,
        version: { index: hit._index, seqNo: hit._seq_no!, primaryTerm: hit._primary_term! },
        // ES scores cosine as (1 + cos) / 2.
        ...(knn ? { score: 2 * (hit._score ?? 0) - 1 } : {}),
      }));
  });
}
