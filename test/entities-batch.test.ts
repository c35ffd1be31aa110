import type { EntityRef } from '../lib/domain/memory';
import { forgetSourcesInEntities } from '../lib/entities/forget-sources';
import { EntityResolver, type EntityDoc } from '../lib/entities/resolver';
import { EntityWriter, type EntityChange } from '../lib/entities/writer';
import type { Embedder } from '../lib/models/embedder';
import { startHarness, type Harness } from './support/harness';

/**
 * The resolver against the real entities index and the local embedding model: a batch's mentions
 * resolve together in a few requests, see each other's effects, and concurrent batches that touch the
 * same entities all land (optimistic concurrency, conflicting entities redone).
 */
describe('entity resolution of a batch (real Elasticsearch, local embedding model)', () => {
  let h: Harness;
  let resolver: EntityResolver;
  let embedder: Embedder;
  let embedded: string[] = [];
  let requests: string[] = [];
  const onResponse = (_error: unknown, result: { meta?: { request?: { params?: { method?: string; path?: string } } } } | null) => {
    const params = result?.meta?.request?.params;
    if (params?.path?.includes('-entities') || params?.path === '/_bulk' || params?.path?.endsWith('/_msearch')) requests.push(`${params.method} ${params.path}`);
  };

  beforeAll(async () => {
    h = await startHarness({ tenants: ['acme'] });
    const model = h.runtime.models.embedder!;
    // The real model, with the names it is asked to embed recorded.
    embedder = {
      model: model.model,
      dims: model.dims,
      embed: (texts) => {
        embedded.push(...texts);
        return model.embed(texts);
      },
    };
    resolver = new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices, embedder });
    h.runtime.es.diagnostic.on('response', onResponse);
  });
  afterAll(async () => {
    h?.runtime.es.diagnostic.off('response', onResponse);
    await h?.close();
  });
  beforeEach(() => {
    embedded = [];
    requests = [];
  });

  const entity = async (ref: EntityRef | undefined) =>
    (await h.runtime.es.get<EntityDoc>({ index: h.runtime.indices.entities, id: ref!.id }))._source!;
  const tenantEntities = async (tenant: string) =>
    (await h.runtime.es.search<EntityDoc>({ index: h.runtime.indices.entities, size: 100, query: { term: { tenant } } })).hits.hits.map((hit) => hit._source!);

  it('embeds new names ahead of the memories queued for the model: a job is not held behind other jobs’ texts', async () => {
    const model = h.runtime.models.embedder!;
    let backlogDone = false;
    const backlog = model
      .embed(Array.from({ length: 512 }, (_, i) => `Background memory number ${i} about the harbour, the market and the late ferry.`))
      .then(() => (backlogDone = true));
    // More queued behind it: names that waited their turn would come after all of the first backlog (a
    // thread that frees up near its end could otherwise take them before its last batch is done).
    const more = model.embed(Array.from({ length: 256 }, (_, i) => `Another memory, number ${i}, about the tram line and the old bakery.`));
    // Whether the names' vectors came back before the backlog's. (When resolve() returns is no measure:
    // its write waits for the index's refresh, up to a second, longer than the backlog may take.)
    let namesBeforeBacklog: boolean | undefined;
    const watched: Embedder = {
      model: model.model,
      dims: model.dims,
      embed: async (texts, options) => {
        const vectors = await model.embed(texts, options);
        namesBeforeBacklog ??= !backlogDone;
        return vectors;
      },
    };
    const direct = new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices, embedder: watched });
    const refs = await direct.resolve('t-urgent', 'src-u', [{ name: 'Quintessa Marlowe', type: 'person' }, { name: 'Vila Nova de Milfontes', type: 'place' }]);
    expect(namesBeforeBacklog).toBe(true);
    expect((await entity(refs.get('quintessa marlowe'))).embedding).toHaveLength(model.dims);
    await Promise.all([backlog, more]);
  });

  it('resolves the mentions of one batch together: "Mel" joins the "Melanie" created beside it', async () => {
    const refs = await resolver.resolve('t-batch', 'src-1', [
      { name: 'Mel', type: 'person' },
      { name: 'Melanie', type: 'person' },
      { name: 'Caroline', type: 'person' },
      { name: "Caroline's", type: 'person' },
      { name: 'Lisbon', type: 'place' },
    ]);
    const made = [...requests];
    expect(refs.get('mel')!.id).toBe(refs.get('melanie')!.id);
    expect(refs.get('caroline')).toMatchObject({ name: 'Caroline', type: 'person' });
    const melanie = await entity(refs.get('melanie'));
    expect(melanie).toMatchObject({ name: 'Melanie', aliases: ['Melanie', 'Mel'], mention_count: 1, source_ids: ['src-1'] });
    expect(melanie.merged_from).toHaveLength(1);
    expect(melanie.embedding).toHaveLength(h.runtime.models.embedder!.dims);
    // Searchable for other jobs' name lookups as soon as the batch returns.
    expect((await tenantEntities('t-batch')).map((doc) => doc.name).sort()).toEqual(['Caroline', 'Lisbon', 'Melanie']);
    // One read of own ids, one name search, one similarity search, one bulk write, then one look
    // around the new entities for ones a batch running at once created (lib/entities/splits.ts).
    expect(made).toHaveLength(5);
  });

  it('a batch of known names reads and writes once and embeds nothing', async () => {
    const refs = await resolver.resolve('t-batch', 'src-2', [
      { name: 'Melanie', type: 'person' },
      { name: 'Caroline', type: 'person' },
      { name: 'Mel', type: 'person' },
    ]);
    const made = [...requests];
    expect(embedded).toEqual([]);
    // Own ids, a name search for "Mel" (an alias, not an id), the bulk write.
    expect(made.filter((request) => request.includes('_msearch'))).toHaveLength(1);
    expect(made).toHaveLength(3);
    const melanie = await entity(refs.get('mel'));
    expect(melanie).toMatchObject({ aliases: ['Melanie', 'Mel'], mention_count: 2, source_ids: ['src-1', 'src-2'] });
    // A second pass of the same source changes nothing and writes nothing.
    requests = [];
    await resolver.resolve('t-batch', 'src-2', [{ name: 'Melanie', type: 'person' }]);
    expect(requests).toHaveLength(1);
    // A later batch of the source that first named them looks around for nothing it did not create
    // (a long document's batches would each look again at every earlier batch's entities) ...
    requests = [];
    await resolver.resolve('t-batch', 'src-1', [{ name: 'Melanie', type: 'person' }]);
    expect(requests).toEqual([expect.stringContaining('_mget')]);
    // ... but a retried batch does: its failed attempt may have created them and stopped before looking.
    requests = [];
    await resolver.resolve('t-batch', 'src-1', [{ name: 'Melanie', type: 'person' }], { attempt: 2 });
    expect(requests).toEqual([expect.stringContaining('_mget'), expect.stringContaining('_msearch')]);
  });

  it('does not guess between two fitting entities: "Bob" beside "Bob Smith" and "Bob Jones" is new', async () => {
    await resolver.resolve('t-bob', 'src-1', [
      { name: 'Bob Smith', type: 'person' },
      { name: 'Bob Jones', type: 'person' },
    ]);
    const refs = await resolver.resolve('t-bob', 'src-2', [{ name: 'Bob', type: 'person' }]);
    expect((await entity(refs.get('bob'))).aliases).toEqual(['Bob']);
    expect(await tenantEntities('t-bob')).toHaveLength(3);
    // Within one batch too.
    const together = await resolver.resolve('t-bob2', 'src-1', [
      { name: 'Bob', type: 'person' },
      { name: 'Bob Smith', type: 'person' },
      { name: 'Bob Jones', type: 'person' },
    ]);
    expect(new Set([...together.values()].map((ref) => ref.id)).size).toBe(3);
  });

  it('types an entity as specifically as any mention of it: one first typed "other" is a person once a person is named so', async () => {
    const first = await resolver.resolve('t-type', 'src-1', [{ name: 'Sasha Ilyina', type: 'other' }]);
    expect(first.get('sasha ilyina')!.type).toBe('other');
    // The same form (and, below, a new one) typed specifically, from another source or the same.
    const named = await resolver.resolve('t-type', 'src-2', [{ name: 'Sasha Ilyina', type: 'person' }]);
    expect(named.get('sasha ilyina')).toMatchObject({ id: first.get('sasha ilyina')!.id, type: 'person' });
    expect(await entity(named.get('sasha ilyina'))).toMatchObject({ type: 'person', source_ids: ['src-1', 'src-2'] });
    // A later mention that says nothing of its type leaves it a person.
    const vague = await resolver.resolve('t-type', 'src-3', [{ name: 'Sasha', type: 'other' }]);
    expect(vague.get('sasha')).toMatchObject({ id: first.get('sasha ilyina')!.id, type: 'person' });
    expect(await entity(vague.get('sasha'))).toMatchObject({ type: 'person', aliases: ['Sasha Ilyina', 'Sasha'] });

    await resolver.resolve('t-type', 'src-4', [{ name: 'Vetra Labs', type: 'thing' }]);
    const again = await resolver.resolve('t-type', 'src-4', [{ name: 'Vetra Labs', type: 'organization' }]);
    expect(await entity(again.get('vetra labs'))).toMatchObject({ type: 'organization', source_ids: ['src-4'], mention_count: 1 });
  });

  it('keeps every source when concurrent batches change the same entities', async () => {
    await resolver.resolve('t-race', 'seed', [{ name: 'Ana Silva', type: 'person' }]);
    const sources = Array.from({ length: 6 }, (_, i) => `src-${i}`);
    // Three resolvers stand for three worker processes (their writes conflict and are redone), two
    // batches each (their writes share one bulk).
    const workers = [resolver, new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices, embedder }), new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices, embedder })];
    // Concurrent creations of "Porto" and "Tiago" and concurrent alias/source additions to "Ana Silva".
    const results = await Promise.all(
      sources.map((source, i) =>
        workers[i % workers.length]!.resolve('t-race', source, [
          { name: 'Ana', type: 'person' },
          { name: 'Porto', type: 'place' },
          { name: 'Tiago', type: 'person' },
        ]),
      ),
    );
    const entities = await tenantEntities('t-race');
    expect(entities.map((doc) => doc.name).sort()).toEqual(['Ana Silva', 'Porto', 'Tiago']);
    const ana = entities.find((doc) => doc.name === 'Ana Silva')!;
    expect(ana.aliases).toEqual(['Ana Silva', 'Ana']);
    expect(ana.source_ids.sort()).toEqual(['seed', ...sources].sort());
    expect(ana.mention_count).toBe(7);
    for (const name of ['Porto', 'Tiago']) {
      const doc = entities.find((candidate) => candidate.name === name)!;
      expect(doc.source_ids.sort()).toEqual(sources);
      expect(doc.mention_count).toBe(6);
    }
    for (const refs of results) expect(refs.get('ana')!.id).toBe(ana.id);
  });

  describe('splits made by batches at once', () => {
    const earlier = '2026-01-05T10:00:00.000Z';
    const later = '2026-01-05T10:00:00.001Z';
    /** Two workers' batches that both look up their names before either writes: each creates its entity. */
    const atOnce = async (tenant: string, run: (workers: EntityResolver[]) => Promise<Map<string, EntityRef>[]>) => {
      let arrived = 0;
      let bothLooked!: () => void;
      const looked = new Promise<void>((resolve) => (bothLooked = resolve));
      const write = EntityWriter.prototype.write;
      const held = jest.spyOn(EntityWriter.prototype, 'write').mockImplementation(async function (this: EntityWriter, changes: EntityChange[]) {
        if (changes[0]?.doc.tenant === tenant && ++arrived === 2) bothLooked();
        if (changes[0]?.doc.tenant === tenant) await looked;
        return write.call(this, changes);
      });
      const workers = [0, 1].map(() => new EntityResolver({ es: h.runtime.es, indices: h.runtime.indices, embedder }));
      try {
        return await run(workers);
      } finally {
        held.mockRestore();
      }
    };

    it('makes one entity of two created at once, the earlier keeping its id, however many heal it at once', async () => {
      const [full, short] = await atOnce('t-split', ([a, b]) =>
        Promise.all([a!.resolve('t-split', 'src-full', [{ name: 'Rui Costa', type: 'person' }], { now: earlier }), b!.resolve('t-split', 'src-short', [{ name: 'Rui', type: 'person' }], { now: later })]),
      );
      const [entity, ...others] = await tenantEntities('t-split');
      expect(others).toEqual([]);
      expect(entity).toMatchObject({ id: full!.get('rui costa')!.id, name: 'Rui Costa', aliases: ['Rui Costa', 'Rui'], first_seen_at: earlier, mention_count: 2 });
      expect(entity!.source_ids.sort()).toEqual(['src-full', 'src-short']);
      expect(entity!.merged_from).toHaveLength(1);
      // Both batches' memories name the one that stays.
      expect(short!.get('rui')).toEqual({ id: entity!.id, name: 'Rui', type: 'person' });
      // Healed already: another pass of either source finds nothing to merge and writes nothing.
      requests = [];
      await resolver.resolve('t-split', 'src-short', [{ name: 'Rui', type: 'person' }]);
      expect(requests.filter((request) => request.includes('_bulk'))).toEqual([]);
    });

    it('types the entity that stays as specifically as either of the two', async () => {
      const [, short] = await atOnce('t-split-type', ([a, b]) =>
        Promise.all([a!.resolve('t-split-type', 'src-full', [{ name: 'Tomé Vilar', type: 'other' }], { now: earlier }), b!.resolve('t-split-type', 'src-short', [{ name: 'Tomé', type: 'person' }], { now: later })]),
      );
      const [entity, ...others] = await tenantEntities('t-split-type');
      expect(others).toEqual([]);
      expect(entity).toMatchObject({ name: 'Tomé Vilar', type: 'person' });
      expect(short!.get('tome')).toMatchObject({ id: entity!.id, type: 'person' });
    });

    it('does not keep a source deleted while the merge runs', async () => {
      const es = h.runtime.es;
      const index = es.index.bind(es);
      let deleted = false;
      // The delete of the later entity's source lands after the merge read it, before it writes the earlier one.
      const writes = jest.spyOn(es, 'index').mockImplementation((async (params: Parameters<typeof es.index>[0], options?: object) => {
        if (!deleted && (params as { document?: EntityDoc }).document?.tenant === 't-split-delete') {
          deleted = true;
          await forgetSourcesInEntities(es, h.runtime.indices, 't-split-delete', ['src-gone'], []);
        }
        return index(params, options);
      }) as typeof es.index);
      try {
        await atOnce('t-split-delete', ([a, b]) =>
          Promise.all([
            a!.resolve('t-split-delete', 'src-kept', [{ name: 'Ines Duarte', type: 'person' }], { now: earlier }),
            b!.resolve('t-split-delete', 'src-gone', [{ name: 'Ines', type: 'person' }], { now: later }),
          ]),
        );
      } finally {
        writes.mockRestore();
      }
      expect(deleted).toBe(true);
      const [entity, ...others] = await tenantEntities('t-split-delete');
      expect(others).toEqual([]);
      expect(entity).toMatchObject({ name: 'Ines Duarte', source_ids: ['src-kept'], mention_count: 1 });
    });
  });
});
