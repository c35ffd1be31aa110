import type { Activities } from '../activities/registry';
import { namesCompatible, normaliseEntityName, shareWord } from '../lib/entities/names';
import { upstreamFailure } from '../lib/errors';
import { startHarness, type Harness } from './support/harness';

describe('entity names', () => {
  it('normalises possessives, accents and case', () => {
    expect(normaliseEntityName("Melanie's")).toBe('melanie');
    expect(normaliseEntityName('  Zoë  Ångström ')).toBe('zoe angstrom');
  });

  it('keeps Indic vowel signs as letters of the name, and drops Arabic and Hebrew vowel points', () => {
    expect(normaliseEntityName('सीता')).not.toBe(normaliseEntityName('सेतु'));
    expect(normaliseEntityName('राजा')).not.toBe(normaliseEntityName('रोजी'));
    // Sharing a word lets names that embed alike merge: "राम" (Ram) and "राजा" (Raja) share none.
    expect(shareWord(normaliseEntityName('राम'), normaliseEntityName('राजा'))).toBe(false);
    expect(normaliseEntityName('मुंबई')).toBe('मुंबई'.normalize('NFKD'));
    expect(normaliseEntityName('مُحَمَّد')).toBe(normaliseEntityName('محمد'));
    expect(normaliseEntityName('יְרוּשָׁלַיִם')).toBe(normaliseEntityName('ירושלים'));
    expect(normaliseEntityName('Zo\u00ade')).toBe('zoe');
  });

  it('treats shortened and partial names as compatible, different people as not', () => {
    expect(namesCompatible('mel', 'melanie')).toBe(true);
    expect(namesCompatible('melanie', 'mel')).toBe(true);
    expect(namesCompatible('bob', 'bob smith')).toBe(true);
    expect(namesCompatible('new york', 'new york city')).toBe(true);
    expect(namesCompatible('bob smith', 'bob jones')).toBe(false);
    expect(namesCompatible('al', 'alice')).toBe(false);
    expect(namesCompatible('melissa', 'melanie')).toBe(false);
    // One letter more is another name, not a short form.
    expect(namesCompatible('dan', 'dana')).toBe(false);
    expect(namesCompatible('ann', 'anna')).toBe(false);
    expect(namesCompatible('dan', 'daniel')).toBe(true);
  });
});

describe('entity resolution: mentions become per-tenant entities with aliases (real Temporal + Elasticsearch)', () => {
  let h: Harness;
  let resolveRuns = 0;
  let injected = false;
  const ingest = async (body: unknown, tenant = 'acme') => {
    const accepted = await h.api('POST', '/v1/conversations', { body, key: h.keys[tenant] });
    expect(accepted.status).toBe(202);
    const progress = await h.waitForJob(tenant, accepted.body.job_id);
    expect(progress.status).toBe('completed');
    return progress;
  };
  const people = async (tenant = 'acme') => {
    const response = await h.api('GET', '/v1/entities?type=person&page_size=100', { key: h.keys[tenant] });
    expect(response.status).toBe(200);
    return response.body.entities as { id: string; name: string; aliases: string[]; merged_from?: string[]; mention_count: number; source_ids: string[] }[];
  };

  beforeAll(async () => {
    h = await startHarness({
      wrapActivities: (activities: Activities) => ({
        ...activities,
        // The worst case for duplicates: the entities were written, then the activity failed and re-ran.
        resolveEntities: async (...args: Parameters<Activities['resolveEntities']>) => {
          const result = await activities.resolveEntities(...args);
          resolveRuns += 1;
          if (args[0].request.documentId === 'garden-chat' && !injected) {
            injected = true;
            throw upstreamFailure('Elasticsearch connection reset (injected after the write)');
          }
          return result;
        },
      }),
    });
    await ingest({
      conversation_id: 'painting-chat',
      messages: [
        { role: 'user', name: 'Melanie', content: 'I painted a lake sunrise last weekend.', turn_id: 'A1' },
        { role: 'user', name: 'Caroline', content: 'That sounds lovely, I want to see it.', turn_id: 'A2' },
      ],
    });
    await ingest({
      conversation_id: 'garden-chat',
      messages: [
        { role: 'user', name: 'Mel', content: 'The tomatoes in my garden finally turned red.', turn_id: 'B1' },
        { role: 'user', name: "Caroline's", content: 'Bring some to the potluck on Friday!', turn_id: 'B2' },
      ],
    });
    await ingest({ conversation_id: 'globex-chat', messages: [{ role: 'user', name: 'Melanie', content: 'Quarterly numbers are in.', turn_id: 'G1' }] }, 'globex');
  });
  afterAll(async () => h?.close());

  it('resolves "Melanie" and "Mel" from two documents to one entity that records the alias and the merge', async () => {
    const acme = await people();
    expect(acme.map((entity) => entity.name).sort()).toEqual(['Caroline', 'Melanie']);
    const melanie = acme.find((entity) => entity.name === 'Melanie')!;
    expect(melanie.aliases.sort()).toEqual(['Mel', 'Melanie']);
    expect(melanie.merged_from).toHaveLength(1);
    expect(melanie.mention_count).toBe(2);
    const caroline = acme.find((entity) => entity.name === 'Caroline')!;
    // "Caroline's" normalises to the same name: the same entity, no alias needed.
    expect(caroline.aliases).toEqual(['Caroline']);
    expect(caroline.source_ids).toHaveLength(2);
  });

  it('points memories of both documents at the same entity id', async () => {
    const melanie = (await people()).find((entity) => entity.name === 'Melanie')!;
    const search = await h.api('POST', '/v1/search', { body: { query: 'painted sunrise tomatoes garden', mode: 'bm25', top_k: 10 } });
    const byTurn = Object.fromEntries(search.body.results.map((r: any) => [r.provenance.turn_ids[0], r.entities]));
    expect(byTurn.A1).toEqual([{ id: melanie.id, name: 'Melanie', type: 'person' }]);
    expect(byTurn.B1).toEqual([{ id: melanie.id, name: 'Mel', type: 'person' }]);
  });

  it("keeps another tenant's Melanie a different entity, invisible to this tenant", async () => {
    const [theirs] = await people('globex');
    expect(theirs!.name).toBe('Melanie');
    expect(theirs!.aliases).toEqual(['Melanie']);
    const ours = (await people()).find((entity) => entity.name === 'Melanie')!;
    expect(theirs!.id).not.toBe(ours.id);
    expect((await h.api('GET', `/v1/entities/${theirs!.id}`)).status).toBe(404);
  });

  it('re-running resolution (a retried activity) creates no duplicates, and a re-sent conversation changes nothing', async () => {
    expect(injected).toBe(true);
    expect(resolveRuns).toBeGreaterThanOrEqual(4);
    const before = await people();
    // The same conversation under its conversation_id again: answered unchanged, with no job.
    const again = await h.api('POST', '/v1/conversations', {
      body: {
        conversation_id: 'garden-chat',
        messages: [
          { role: 'user', name: 'Mel', content: 'The tomatoes in my garden finally turned red.', turn_id: 'B1' },
          { role: 'user', name: "Caroline's", content: 'Bring some to the potluck on Friday!', turn_id: 'B2' },
        ],
      },
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'unchanged', job_id: null });
    const after = await people();
    expect(after).toEqual(before);
    const all = await h.api('GET', '/v1/entities?page_size=100');
    expect(new Set(all.body.entities.map((entity: { id: string }) => entity.id)).size).toBe(all.body.total);
  });
});
