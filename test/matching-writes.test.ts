import { randomBytes } from 'node:crypto';
import type { estypes } from '@elastic/elasticsearch';
import { loadConfig } from '../lib/config';
import { createElasticsearchClient } from '../lib/elasticsearch/client';
import { deleteMatching, writeMatching } from '../lib/elasticsearch/matching-writes';
import { conflict } from '../lib/errors';

/**
 * Writes to what a query matches, a page at a time, each conditional on the version read, against the
 * real node: a write lost to another writer is made again on what that writer left, while the query
 * still matches it; a page changed under it every time gives up.
 */
describe('writes to what a query matches (real Elasticsearch)', () => {
  const es = createElasticsearchClient(loadConfig().elasticsearchUrl);
  const index = `cairn-test-matching-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    await es.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0 } });
  });
  afterAll(async () => {
    await es.indices.delete({ index }, { ignore: [404] });
    await es.close();
  });

  const put = (docs: { id: string; tenant: string; n: number }[]) =>
    es.bulk({ refresh: true, operations: docs.flatMap(({ id, ...doc }) => [{ index: { _index: index, _id: id } }, doc]) });
  const ofTenant = (tenant: string): estypes.QueryDslQueryContainer => ({ term: { 'tenant.keyword': tenant } });
  const left = async (tenant: string) => (await es.count({ index, query: ofTenant(tenant) })).count;
  /** Before each of the next `times` bulk writes, another writer rewrites every document of the tenant first. */
  const rewrittenBeforeBulk = (tenant: string, times: number) => {
    const bulk = es.bulk.bind(es);
    let rewrites = 0;
    return jest.spyOn(es, 'bulk').mockImplementation((async (params: estypes.BulkRequest, options?: object) => {
      if (rewrites < times && params.operations?.some((operation) => 'if_seq_no' in (Object.values(operation as object)[0] ?? {}))) {
        rewrites += 1;
        const { hits } = await es.search<{ tenant: string; n: number }>({ index, query: ofTenant(tenant), size: 100 });
        await bulk({ operations: hits.hits.flatMap((hit) => [{ index: { _index: index, _id: hit._id! } }, { ...hit._source!, n: hit._source!.n + 100 }]) });
      }
      return bulk(params, options);
    }) as typeof es.bulk);
  };

  it('deletes what was rewritten under it while it still matches: a page lost whole is not the end', async () => {
    await put(Array.from({ length: 5 }, (_, i) => ({ id: `a-${i}`, tenant: 'alpha', n: i })));
    await put([{ id: 'b-0', tenant: 'beta', n: 0 }]);
    const spy = rewrittenBeforeBulk('alpha', 1);
    try {
      // Every delete of the first page meets a newer version: all five are read again and deleted.
      expect(await deleteMatching(es, index, ofTenant('alpha'), "alpha's documents")).toBe(5);
    } finally {
      spy.mockRestore();
    }
    expect(await left('alpha')).toBe(0);
    expect(await left('beta')).toBe(1);
  });

  it('makes an update lost to another writer again from what that writer left, and gives up when every page is lost', async () => {
    await put(Array.from({ length: 3 }, (_, i) => ({ id: `g-${i}`, tenant: 'gamma', n: i })));
    const updates = (contendedPages: number) =>
      writeMatching<{ n: number; done?: boolean }>(es, {
        index,
        query: () => ({ bool: { filter: [ofTenant('gamma')], must_not: [{ exists: { field: 'done' } }] } }),
        fields: ['n'],
        pageSize: 2,
        writesOf: (hits) => hits.map((hit) => ({ update: { n: hit._source!.n * 10, done: true } })),
        what: "update gamma's documents",
        contendedPages,
        exhausted: () => conflict('gamma kept changing'),
      });
    const spy = rewrittenBeforeBulk('gamma', 2);
    try {
      await expect(updates(1)).rejects.toMatchObject({ message: 'gamma kept changing' });
      await updates(2);
    } finally {
      spy.mockRestore();
    }
    // Each update made on the rewritten value (n + 100 twice), none on a value read before it.
    const { hits } = await es.search<{ n: number; done: boolean }>({ index, query: ofTenant('gamma'), size: 10, sort: [{ n: 'asc' }] });
    expect(hits.hits.map((hit) => hit._source)).toEqual([0, 1, 2].map((i) => ({ tenant: 'gamma', n: (i + 200) * 10, done: true })));
  });
});
