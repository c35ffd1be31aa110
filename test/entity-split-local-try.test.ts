import { Context } from '@temporalio/activity';
import { newEntity, type EntityDoc } from '../lib/entities/entity';
import { EntitySplits } from '../lib/entities/splits';
import { upstreamFailure } from '../lib/errors';
import { startHarness, type Harness } from './support/harness';

/**
 * A small job resolves its entities as a local activity first, once, and on a retryable failure as the
 * regular activity (workflows/ingest/activities.ts: localFirst), whose attempt numbers start again at 1.
 * A local try that wrote its entities and failed before looking around for a split leaves that look to
 * the regular try, as any retry's (real workflow, real Elasticsearch).
 */
describe('a split left by a small job whose local entity resolution failed after writing', () => {
  let h: Harness;
  const failedLocally: boolean[] = [];

  beforeAll(async () => {
    h = await startHarness({ tenants: ['acme'] });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await h?.close();
  });

  it('is healed by the regular try that takes over', async () => {
    const heal = EntitySplits.prototype.heal;
    // The other side of the split: another job's "Nadia Okafor", first seen a moment before this job's
    // "Nadia", written (and looked around from, finding nothing yet) while this job resolved. Then the
    // look around fails, as a merge lease held past its wait does.
    jest.spyOn(EntitySplits.prototype, 'heal').mockImplementation(async function (this: EntitySplits, tenant, entities, batch) {
      const nadia = entities.find((doc) => doc.normalized_name === 'nadia');
      if (nadia && failedLocally.length === 0) {
        const earlier = new Date(Date.parse(nadia.first_seen_at) - 1000).toISOString();
        const other: EntityDoc = newEntity(tenant, 'src-other-job', { name: 'Nadia Okafor', type: nadia.type, normalised: 'nadia okafor' }, earlier, undefined);
        await h.runtime.es.index({ index: h.runtime.indices.entities, id: other.id, document: other, refresh: true });
        failedLocally.push(Context.current().info.isLocal);
        throw upstreamFailure('entity-merge lease is busy (injected)');
      }
      return heal.call(this, tenant, entities, batch);
    });

    const sent = await h.api('POST', '/v1/conversations', { body: { conversation_id: 'nadia-chat', messages: [{ role: 'user', name: 'Nadia', content: 'I moved the boat to the winter mooring.' }] } });
    expect((await h.waitForJob('acme', sent.body.job_id)).status).toBe('completed');
    expect(failedLocally).toEqual([true]);

    const { hits } = await h.runtime.es.search<EntityDoc>({ index: h.runtime.indices.entities, size: 10, query: { term: { tenant: 'acme' } } });
    const entities = hits.hits.map((hit) => hit._source!);
    expect(entities).toHaveLength(1);
    expect(entities[0]).toMatchObject({ name: 'Nadia Okafor', aliases: ['Nadia Okafor', 'Nadia'] });
    const memories = await h.runtime.es.search<{ entities: { id: string }[] }>({ index: h.runtime.indices.memories, query: { term: { 'provenance.job_id': sent.body.job_id } } });
    expect(memories.hits.hits.flatMap((hit) => hit._source!.entities.map((entity) => entity.id))).toContain(entities[0]!.id);
  }, 60_000);
});
