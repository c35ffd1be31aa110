import type { Client, estypes } from '@elastic/elasticsearch';
import { upstreamFailure, type CairnError } from '../errors';

/** A write to a document a search found: its delete, a partial update, or its whole new version. */
export type FoundWrite = 'delete' | { update: object } | { index: object };
export type WriteAction = 'delete' | 'update' | 'index';

/** A write a search's hit is given, or none to leave it as it is. */
type HitWrite = { hit: estypes.SearchHit<unknown>; write: FoundWrite | undefined };

/**
 * Writes to documents a search found (with `seq_no_primary_term`) in one bulk request, each on the
 * condition that it is still the version found. One changed (409) or deleted (404) since is lost to
 * its other writer and left as it is; any other failure is raised, saying what could not be done
 * (`what`: "delete the sources' memories"). Answers the writes that landed, and whether any was lost.
 */
export async function writeFound(es: Client, writes: HitWrite[], what: string, refresh: 'wait_for' | false): Promise<{ written: { id: string; action: WriteAction }[]; lost: boolean }> {
  const given = writes.filter((write): write is { hit: estypes.SearchHit<unknown>; write: FoundWrite } => write.write !== undefined);
  if (given.length === 0) return { written: [], lost: false };
  const response = await es.bulk({
    refresh,
    operations: given.flatMap(({ hit, write }): estypes.BulkRequest['operations'] & object => {
      const version = { _index: hit._index, _id: hit._id!, if_seq_no: hit._seq_no, if_primary_term: hit._primary_term };
      if (write === 'delete') return [{ delete: version }];
      return 'update' in write ? [{ update: version }, { doc: write.update }] : [{ index: version }, write.index];
    }),
  });
  const written: { id: string; action: WriteAction }[] = [];
  let lost = false;
  for (const item of response.items) {
    const [action, result] = Object.entries(item)[0]! as [WriteAction, estypes.BulkResponseItem];
    if (result.status === 404 || result.status === 409) lost = true;
    else if (result.error) throw upstreamFailure(`Elasticsearch could not ${what}: ${result.error.reason ?? result.status}`);
    else written.push({ id: result._id!, action });
  }
  return { written, lost };
}

/** What a writeMatching writes, a page at a time. */
export interface MatchingWrites<T> {
  index: string;
  /** What is left to write: asked anew for each page. */
  query: () => estypes.QueryDslQueryContainer;
  /** The fields the writes are made from (false: none). */
  fields: string[] | false;
  pageSize: number;
  /** Each hit's write, or none to leave it (the query must leave it out from then on). */
  writesOf: (hits: estypes.SearchHit<T>[]) => (FoundWrite | undefined)[] | Promise<(FoundWrite | undefined)[]>;
  /** Told of each write that landed. */
  written?: (id: string, action: WriteAction) => void;
  /** For a failed write's message: "delete the sources' memories". */
  what: string;
  /** How many pages may lose writes to other writers before it gives up, raising `exhausted()`. */
  contendedPages: number;
  exhausted: () => CairnError;
}

/**
 * Writes to everything `query` matches in `index`, a page at a time (this node may run without the
 * reindex module's update- and delete-by-query). Each write is conditional on the version the page's
 * search saw (writeFound) and searchable before the next page is searched. A write lost to another
 * writer is made again on the next page from what that writer left, if the query still matches it:
 * so after such a page the index is refreshed, as until its next scheduled refresh the search would
 * answer the versions already lost to again. Stops when nothing matches; gives up after
 * `contendedPages` pages that lost writes (for the caller's retry).
 */
export async function writeMatching<T>(es: Client, writes: MatchingWrites<T>): Promise<void> {
  for (let contended = 0; ; ) {
    const { hits } = await es.search<T>({ index: writes.index, query: writes.query(), size: writes.pageSize, _source: writes.fields, seq_no_primary_term: true });
    if (hits.hits.length === 0) return;
    if (contended === writes.contendedPages) throw writes.exhausted();
    const page = await writes.writesOf(hits.hits);
    const { written, lost } = await writeFound(es, hits.hits.map((hit, i) => ({ hit, write: page[i] })), writes.what, 'wait_for');
    for (const { id, action } of written) writes.written?.(id, action);
    if (!lost) continue;
    contended += 1;
    await es.indices.refresh({ index: writes.index });
  }
}

/** Pages of deletes a deleteMatching may lose to other writers before it gives up. */
const CONTENDED_DELETES = 20;

/**
 * Deletes what `query` matches in `index` (writeMatching). A document rewritten or edited since it was
 * found is deleted only if the query still matches what its writer left (an edit, a newer version,
 * that the query leaves out, stays). Answers how many it deleted.
 */
export async function deleteMatching(es: Client, index: string, query: estypes.QueryDslQueryContainer, what: string): Promise<number> {
  let deleted = 0;
  await writeMatching(es, {
    index,
    query: () => query,
    fields: false,
    pageSize: 1000,
    writesOf: (hits) => hits.map(() => 'delete'),
    written: () => (deleted += 1),
    what: `delete ${what}`,
    contendedPages: CONTENDED_DELETES,
    exhausted: () => upstreamFailure(`${what} kept changing while being deleted; try again`),
  });
  return deleted;
}
