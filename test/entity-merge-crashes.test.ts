import type { EntityRef } from '../lib/domain/memory';
import { newEntity, type EntityDoc } from '../lib/entities/entity';
import { EntityResolver } from '../lib/entities/resolver';
import { startHarness, type Harness } from './support/harness';

/**
 * A merge of a split (lib/entities/splits.ts) is several writes: the survivor with the loser folded
 * in, the loser deleted, the memories naming the loser repointed. A worker dying between them (here:
 * the next write failing) leaves a prefix of them done; the activity's retry, or the next job that
 * meets the survivor, finishes the merge.
 */
describe('a merge of two entities interrupted between its writes (real Elasticsearch)', () => {
  let h: Harness;
  let resolver: EntityResolver;
  const earlier = '2026-02-01T10:00:00.000Z';
  const later = '2026-02-01T10:00:00.001Z';

  beforeAll(async () => {
    h = await startHarness({ tenants: ['merges'] });
    resolver = new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await h?.close();
  });
  afterEach(() => jest.restoreAllMocks());

  const es = () => h.runtime.es;
  const entityOf = (tenant: string, name: string): EntityDoc =>
    newEntity(tenant, `src-${name.toLowerCase().replace(/ /g, '-')}`, { name, type: 'person', normalised: name.toLowerCase() }, name.includes(' ') ? earlier : later, undefined);
  /**
   * "Rui Costa" (earlier) and "Rui" (later), as two jobs that ran at once wrote them, neither having
   * looked around yet (their first attempts stopped there: the resolves below are their retries,
   * which look around every entity their source named first); a third job's memory names "Rui".
   */
  const split = async (tenant: string) => {
    const [survivor, loser] = [entityOf(tenant, 'Rui Costa'), entityOf(tenant, 'Rui')];
    await es().bulk({ index: h.runtime.indices.entities, refresh: true, operations: [survivor, loser].flatMap((doc) => [{ create: { _id: doc.id } }, doc]) });
    const memory = { id: `mem-${tenant}`, tenant, text: 'Rui fixed the boat.', type: 'fact', entities: [{ id: loser.id, name: 'Rui', type: 'person' }], provenance: { source_id: 'src-other' } };
    await es().index({ index: h.runtime.indices.memories, id: memory.id, document: memory, refresh: true });
    return { survivor, loser, memory };
  };
  const entitiesOf = async (tenant: string) =>
    (await es().search<EntityDoc & { merging?: string[] }>({ index: h.runtime.indices.entities, size: 100, query: { term: { tenant } } })).hits.hits.map((hit) => hit._source!);
  const memoryEntities = async (id: string) => (await es().get<{ entities: EntityRef[] }>({ index: h.runtime.indices.memories, id }))._source!.entities.map((ref) => ref.id);
  /** Healed: one entity, the earlier, holding both; the third job's memory names it. */
  const expectHealed = async (tenant: string, survivor: EntityDoc, loser: EntityDoc, memoryId: string, sources = ['src-rui', 'src-rui-costa']) => {
    const [entity, ...others] = await entitiesOf(tenant);
    expect(others).toEqual([]);
    expect(entity).toMatchObject({ id: survivor.id, aliases: ['Rui Costa', 'Rui'], merged_from: [loser.id], mention_count: sources.length });
    expect(entity!.source_ids.sort()).toEqual(sources);
    expect(entity!.merging ?? []).toEqual([]);
    expect(await memoryEntities(memoryId)).toEqual([survivor.id]);
  };
  /** The next call of `method` the test double meets that `matches` fails, as a worker dying there would leave it. */
  const failOnce = <M extends 'delete' | 'bulk' | 'search' | 'index'>(method: M, matches: (params: any) => boolean) => {
    const client = es() as any;
    const original = client[method].bind(client);
    let failed = false;
    jest.spyOn(client, method).mockImplementation(async (params: any, options?: unknown) => {
      if (!failed && matches(params)) {
        failed = true;
        throw new Error(`the worker died before this ${method}`);
      }
      return original(params, options);
    });
    return () => failed;
  };

  it.each([
    ['the later job’s own entity', 'src-rui', 'Rui', later],
    ['an entity a later job created', 'src-rui-costa', 'Rui Costa', earlier],
  ])('heals on the retry when the loser is not deleted after the survivor was written (%s merged)', async (_, sourceId, name, at) => {
    const tenant = `m-undeleted-${name.length}`;
    const { survivor, loser, memory } = await split(tenant);
    const crashed = failOnce('delete', (params) => params.index === h.runtime.indices.entities && params.id === loser.id);
    await expect(resolver.resolve(tenant, sourceId, [{ name, type: 'person' }], { now: at, attempt: 2 })).rejects.toThrow(/worker died/);
    expect(crashed()).toBe(true);
    jest.restoreAllMocks();
    await resolver.resolve(tenant, sourceId, [{ name, type: 'person' }], { now: at, attempt: 2 });
    await expectHealed(tenant, survivor, loser, memory.id);
  });

  it.each([
    ['the later job’s own entity', 'src-rui', 'Rui', later],
    ['an entity a later job created', 'src-rui-costa', 'Rui Costa', earlier],
  ])('heals on the retry when the memories naming the deleted loser were not repointed (%s merged)', async (_, sourceId, name, at) => {
    const tenant = `m-unrepointed-${name.length}`;
    const { survivor, loser, memory } = await split(tenant);
    const crashed = failOnce('search', (params) => params.index === h.runtime.indices.memories);
    await expect(resolver.resolve(tenant, sourceId, [{ name, type: 'person' }], { now: at, attempt: 2 })).rejects.toThrow(/worker died/);
    expect(crashed()).toBe(true);
    expect(await memoryEntities(memory.id)).toEqual([loser.id]);
    jest.restoreAllMocks();
    await resolver.resolve(tenant, sourceId, [{ name, type: 'person' }], { now: at, attempt: 2 });
    await expectHealed(tenant, survivor, loser, memory.id);
  });

  it.each([
    ['the loser is not deleted', 'delete', (params: any) => params.index === h.runtime.indices.entities],
    ['the memories naming the loser were not repointed', 'search', (params: any) => params.index === h.runtime.indices.memories],
  ] as const)('is finished by the next job naming the survivor when the interrupted one is never retried (cancelled): %s', async (window, method, matches) => {
    const tenant = `m-next-job-${method}`;
    const { survivor, loser, memory } = await split(tenant);
    failOnce(method, matches);
    await expect(resolver.resolve(tenant, 'src-rui', [{ name: 'Rui', type: 'person' }], { now: later, attempt: 2 })).rejects.toThrow(/worker died/);
    jest.restoreAllMocks();
    await resolver.resolve(tenant, 'src-third', [{ name: 'Rui Costa', type: 'person' }]);
    await expectHealed(tenant, survivor, loser, memory.id, ['src-rui', 'src-rui-costa', 'src-third']);
  });

  it('shows no unfinished merge through the API, and forgets it on the retry when only that was left', async () => {
    const tenant = 'merges';
    const { survivor, loser, memory } = await split(tenant);
    // The last write of the merge: the survivor forgetting the merge as begun.
    const crashed = failOnce('index', (params) => params.index === h.runtime.indices.entities && params.id === survivor.id && !params.document.merging);
    await expect(resolver.resolve(tenant, 'src-rui', [{ name: 'Rui', type: 'person' }], { now: later, attempt: 2 })).rejects.toThrow(/worker died/);
    expect(crashed()).toBe(true);
    jest.restoreAllMocks();
    expect((await entitiesOf(tenant))[0]!.merging).toEqual([loser.id]);
    const listed = await h.api('GET', '/v1/entities', { key: h.keys.merges });
    expect(listed.body.entities).toHaveLength(1);
    expect(listed.body.entities[0]).not.toHaveProperty('merging');
    expect((await h.api('GET', `/v1/entities/${survivor.id}`, { key: h.keys.merges })).body).not.toHaveProperty('merging');
    await resolver.resolve(tenant, 'src-rui', [{ name: 'Rui', type: 'person' }], { now: later, attempt: 2 });
    await expectHealed(tenant, survivor, loser, memory.id);
  });

  it('hands an unfinished merge of an entity merged in turn to the entity it went into', async () => {
    const tenant = 'm-chain';
    // "Rui" absorbed "R Costa" and died before repointing its memories; then "Rui" proves a split of "Rui Costa Lopes".
    const [first, middle, gone] = [entityOf(tenant, 'Rui Costa Lopes'), entityOf(tenant, 'Rui'), entityOf(tenant, 'R Costa')];
    const unfinished = { ...middle, aliases: ['Rui', 'R Costa'], normalized_aliases: ['rui', 'r costa'], merged_from: [gone.id], merging: [gone.id] };
    await es().bulk({ index: h.runtime.indices.entities, refresh: true, operations: [first, unfinished].flatMap((doc) => [{ create: { _id: doc.id } }, doc]) });
    const memory = { id: 'mem-chain', tenant, text: 'R Costa sails on Sundays.', type: 'fact', entities: [{ id: gone.id, name: 'R Costa', type: 'person' }], provenance: { source_id: 'src-other' } };
    await es().index({ index: h.runtime.indices.memories, id: memory.id, document: memory, refresh: true });
    // The earlier entity's job merges "Rui" (and what it had begun) into it.
    await resolver.resolve(tenant, first.source_ids[0]!, [{ name: 'Rui Costa Lopes', type: 'person' }], { now: earlier, attempt: 2 });
    const [entity, ...others] = await entitiesOf(tenant);
    expect(others).toEqual([]);
    expect(entity!.merged_from!.sort()).toEqual([middle.id, gone.id].sort());
    // The next job naming it finishes what "Rui" had begun.
    await resolver.resolve(tenant, 'src-third', [{ name: 'Rui Costa Lopes', type: 'person' }]);
    expect((await entitiesOf(tenant))[0]!.merging ?? []).toEqual([]);
    expect(await memoryEntities(memory.id)).toEqual([first.id]);
  });
});
