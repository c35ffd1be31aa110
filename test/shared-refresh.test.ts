import { randomBytes } from 'node:crypto';
import { loadConfig } from '../lib/config';
import { ActivitiesInFlight } from '../lib/activities-in-flight';
import { createElasticsearchClient } from '../lib/elasticsearch/client';
import { PromptRefresh, SharedRefresh } from '../lib/elasticsearch/refresh';

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

  it('PromptRefresh: refreshes at once while every activity at work waits for a refresh, not while another still works', async () => {
    // This index has no scheduled refreshes: a `wait_for` write returns only once something refreshes it.
    const activities = new ActivitiesInFlight();
    const prompt = new PromptRefresh(es, () => activities.size);
    const writing = (id: string) => activities.counting(() => prompt.write(index, () => es.index({ index, id, document: { id }, refresh: 'wait_for' })));

    // An ingest on an idle worker; then the last two jobs of a burst, ending together.
    await writing('alone')();
    await Promise.all([writing('last-1')(), writing('last-2')()]);
    expect(await Promise.all(['alone', 'last-1', 'last-2'].map(searchable))).toEqual([true, true, true]);

    // A write while another activity is still at work (its write would share the refresh): it waits.
    let finish!: () => void;
    const working = activities.counting(() => new Promise<void>((resolve) => (finish = resolve)))();
    let returned = false;
    const pending = writing('company')().then(() => (returned = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect({ returned, running: activities.size }).toEqual({ returned: false, running: 2 });
    // That activity ends: the write, now alone, is refreshed.
    finish();
    await working;
    await pending;
    expect(await searchable('company')).toBe(true);
    expect(activities.size).toBe(0);
  }, 15_000);
});
