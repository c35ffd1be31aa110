import { randomBytes } from 'node:crypto';
import { loadConfig } from '../lib/config';
import { createElasticsearchClient } from '../lib/elasticsearch/client';
import { SharedRefresh } from '../lib/elasticsearch/refresh';

/** SharedRefresh against the real node: what each caller wrote is searchable, with refreshes shared. */
describe('SharedRefresh', () => {
  const es = createElasticsearchClient(loadConfig().elasticsearchUrl);
  const index = `cairn-test-refresh-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    // No scheduled refreshes: only the ones asked for make anything searchable, and each is counted.
    await es.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: '-1' } });
  });
  afterAll(async () => {
    await es.indices.delete({ index }, { ignore: [404] });
    await es.close();
  });

  const refreshes = async () => (await es.indices.stats({ index, metric: 'refresh' })).indices![index]!.primaries!.refresh!.total!;
  const searchable = async (id: string) => (await es.count({ index, query: { ids: { values: [id] } } })).count === 1;

  it('shows each caller its own write, with one refresh in flight at a time for many callers', async () => {
    const shared = new SharedRefresh(es, index);
    const before = await refreshes();
    const callers = 24;
    // Each caller writes, then asks; the writes land at different moments, some during a refresh.
    const seen = await Promise.all(
      Array.from({ length: callers }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, (i % 6) * 3));
        await es.index({ index, id: `doc-${i}`, document: { n: i } });
        await shared.refresh();
        return searchable(`doc-${i}`);
      }),
    );
    expect(seen).toEqual(Array.from({ length: callers }, () => true));
    const used = (await refreshes()) - before;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThan(callers);
  });

  it('waits for a refresh that started after it asked, not one already running', async () => {
    const shared = new SharedRefresh(es, index);
    await es.index({ index, id: 'early', document: { n: 0 } });
    const running = shared.refresh();
    // Written while that refresh may already be under way: the next call must not settle for it.
    await es.index({ index, id: 'late', document: { n: 1 } });
    await shared.refresh();
    expect(await searchable('late')).toBe(true);
    await running;
  });

  it('passes a failed refresh on to its callers, and the next call tries again', async () => {
    const missing = new SharedRefresh(es, `${index}-missing`);
    await expect(missing.refresh()).rejects.toThrow(/index_not_found/);
    await expect(missing.refresh()).rejects.toThrow(/index_not_found/);
  });
});
