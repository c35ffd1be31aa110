import { stemmedText, tokenize } from '../lib/search/analysis';
import { MAX_QUERY_TERMS, withinClauseBudget } from '../lib/search/clause-budget';
import { executeSearch } from '../lib/search/execute';
import { RECIPES, type SearchPlan } from '../lib/search/plan';
import { dateWindowsOf } from '../lib/search/query-dates';
import { startHarness, type Harness } from './support/harness';

describe('client-side analysis', () => {
  it('stems words and drops stop and question words, so word forms meet', () => {
    expect(stemmedText('When did Caroline go hiking?')).toBe('carolin go hike');
    expect(stemmedText('We hiked up the mountain')).toBe('hike mountain');
    expect(stemmedText("Melanie's adoption agencies")).toBe(stemmedText('melanie adopted agency'));
    expect(stemmedText('What did you do?')).toBeUndefined();
  });

  const stemsOf = (text: string) => stemmedText(text)?.split(' ') ?? [];

  it('also indexes the word after an elided article and the word before a suffix, but leaves English contractions glued', () => {
    expect(stemsOf("Ma sœur travaille à l'hôpital d'Orléans depuis l'année dernière.")).toEqual(
      expect.arrayContaining([...stemsOf('hôpital'), ...stemsOf('Orléans'), ...stemsOf('année')]),
    );
    expect(stemsOf("Mio fratello vive nell'Italia e ama l'opera.")).toEqual(expect.arrayContaining([...stemsOf('Italia'), ...stemsOf('opera')]));
    expect(stemsOf("İstanbul'da yaşıyorum. Ankara’ya gittim.")).toEqual(expect.arrayContaining([...stemsOf('istanbul'), ...stemsOf('Ankara')]));
    // The glued form stays, so what was indexed before still meets the query, and 1-letter fragments are no words.
    expect(tokenize("l'hôpital")).toEqual(['lhopital', 'hopital']);
    expect(tokenize("don't won’t we'll I'm they've she'd Caroline's")).toEqual(['dont', 'wont', 'well', 'im', 'theyve', 'shed', 'caroline']);
    expect(stemmedText("I don't like it")).toBe(stemmedText('I dont like it'));
  });

  it('keeps combining marks inside their word: Indic vowel signs are letters, Arabic and Hebrew vowel points are optional', () => {
    expect(tokenize('मेरे पास एक किताब है।')).toEqual(['मेरे', 'पास', 'एक', 'किताब', 'है'].map((word) => word.normalize('NFKD')));
    // "book", "cat", "tea" and "train" share letters, never a word.
    const [book, cat, tea, train] = ['किताब', 'मुझे बिल्ली बहुत पसंद है।', 'तुम कल सुबह चाय पीने आओगे?', 'ट्रेन'].map(stemsOf);
    for (const other of [cat, tea, train]) expect(other!.filter((word) => book!.includes(word))).toEqual([]);
    expect(stemmedText('ذَهَبَ مُحَمَّدٌ إِلَى المَدْرَسَةِ.')).toBe(stemmedText('ذهب محمد إلى المدرسة.'));
    expect(stemsOf('ذَهَبَ مُحَمَّدٌ إِلَى المَدْرَسَةِ.')).toEqual(expect.arrayContaining(stemsOf('محمد')));
    expect(stemmedText('בִּירוּשָׁלַיִם')).toBe(stemmedText('בירושלים'));
    expect(stemmedText('Ça résumé naïve São Paulo')).toBe(stemmedText('ca resume naive sao paulo'));
  });

  it('reads a word with a soft hyphen, zero-width space or joiner, word joiner or BOM inside as the word', () => {
    for (const [hidden, word] of [
      ['Donau\u00addampf\u00adschiff', 'Donaudampfschiff'],
      ['pass\u200bword', 'password'],
      ['lib\u200drary', 'library'],
      ['Keizers\u2060gracht', 'Keizersgracht'],
      ['invo\ufeffice', 'invoice'],
      ['Bundes\u00adkanzlerin', 'Bundeskanzlerin'],
    ]) {
      expect(stemsOf(hidden!)).toEqual(expect.arrayContaining(stemsOf(word!)));
    }
  });

  it('sends a query of more distinct terms than Elasticsearch allows clauses as its first distinct terms', () => {
    const ideographs = Array.from({ length: 3000 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
    const capped = withinClauseBudget(ideographs + ideographs).split(' ');
    expect(capped).toHaveLength(MAX_QUERY_TERMS);
    expect(capped.slice(0, 2)).toEqual(['一', '丁']);
    const english = 'what did Caroline say about the painting she did for the gallery?';
    expect(withinClauseBudget(english)).toBe(english);
  });
});

describe('dates named in a query', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  it('become day, month and year windows; a month without a year means that month of recent years', () => {
    expect(dateWindowsOf('What painting did Melanie show on October 13, 2023?', now)).toEqual([{ gte: '2023-10-12', lt: '2023-10-15' }]);
    expect(dateWindowsOf('What did Mel paint in July 2023?', now)).toEqual([{ gte: '2023-07-01', lt: '2023-08-01' }]);
    expect(dateWindowsOf('How often did she go to the beach in 2023?', now)).toEqual([{ gte: '2023-01-01', lt: '2024-01-01' }]);
    // Past what Elasticsearch reads as a date: no window, not a failed search.
    expect(dateWindowsOf('what happened on 9999-12-31', now)).toEqual([]);
    expect(dateWindowsOf('900000000 hours ago', now)).toEqual([]);
    const june = dateWindowsOf('When did Melanie go camping in June?', now);
    expect(june[0]).toEqual({ gte: '2026-06-01', lt: '2026-07-01' });
    expect(june).toContainEqual({ gte: '2023-06-01', lt: '2023-07-01' });
    expect(dateWindowsOf('What did I do yesterday?', now)).toEqual([{ gte: '2026-11-19', lt: '2026-11-22' }]);
    expect(dateWindowsOf('What did she say at 5 pm?', now)).toEqual([]);
    expect(dateWindowsOf('Who painted the lake?', now)).toEqual([]);
  });
});

describe('retrieval quality over real Elasticsearch: stems, speakers, session dates', () => {
  let h: Harness;
  const ingest = async (body: unknown) => {
    const accepted = await h.api('POST', '/v1/conversations', { body });
    expect(accepted.status).toBe(202);
    const progress = await h.waitForJob('acme', accepted.body.job_id);
    expect(progress.status).toBe('completed');
  };
  const search = (body: unknown) => h.api('POST', '/v1/search', { body });

  beforeAll(async () => {
    h = await startHarness();
    await ingest({
      conversation_id: 'weekend',
      // LoCoMo's own date format: normalised to ISO at the boundary, never an index failure.
      session_date: '1:56 pm on 8 May, 2023',
      scope: { space_id: 'weekend' },
      messages: [
        { role: 'user', name: 'Caroline', content: 'Melanie will make a painting for the gallery, a big painting.', turn_id: 'W1' },
        { role: 'user', name: 'Melanie', content: 'I finished a painting of the lake for the gallery.', turn_id: 'W2' },
        { role: 'user', name: 'Caroline', content: 'We hiked up the mountain on Sunday.', turn_id: 'W3' },
        { role: 'user', name: 'Melanie', content: 'The weather was great for the kids at the beach.', turn_id: 'W4' },
      ],
    });
    await ingest({
      conversation_id: 'june',
      session_date: '4:04 pm on 20 June, 2023',
      scope: { space_id: 'weekend' },
      messages: [
        { role: 'user', name: 'Melanie', content: 'Here is the painting I did this afternoon: a small sunset.', turn_id: 'J1' },
        { role: 'user', name: 'Caroline', content: 'So pretty! What gave you the idea for those colours?', turn_id: 'J2' },
        { role: 'user', name: 'Melanie', content: 'Our trip to the coast. The evenings there stay with me.', turn_id: 'J3' },
        { role: 'user', name: 'Caroline', content: 'I should go there too someday.', turn_id: 'J4' },
      ],
    });
  });
  afterAll(async () => h?.close());

  it('finds "hiked" when asked about "hiking" (the standard analyzer alone would not)', async () => {
    const response = await search({ query: 'Who went hiking?', mode: 'bm25', filters: { space_id: 'weekend' } });
    expect(response.status).toBe(200);
    expect(response.body.results[0].provenance.turn_ids).toEqual(['W3']);
    const plainText = await h.runtime.es.search({ index: h.runtime.indices.memories, query: { match: { text: 'hiking' } } });
    expect(plainText.hits.hits).toHaveLength(0);
    expect(response.body.results[0].stems).toBeUndefined();
  });

  it('ranks the named person’s own turn above a turn that only mentions them', async () => {
    const deps = { es: h.runtime.es, index: h.runtime.indices.memories, embedder: h.runtime.models.embedder };
    const ask = (plan: SearchPlan) =>
      executeSearch(deps, { tenant: 'acme', query: 'What painting did Melanie make for the gallery?', plan, filters: { space_id: 'weekend' } });
    const withoutBoost = await ask({ ...RECIPES.bm25, bm25: { ...RECIPES.bm25.bm25, speakerBoost: 0 } });
    expect(withoutBoost[0]!.provenance.turn_ids).toEqual(['W1']);
    const boosted = await ask(RECIPES.bm25);
    expect(boosted[0]!.provenance.turn_ids).toEqual(['W2']);
    const hybrid = await ask(RECIPES.hybrid);
    expect(hybrid[0]!.provenance.turn_ids).toEqual(['W2']);
  });

  it('ranks memories from the day a query names above better word matches from other days', async () => {
    const deps = { es: h.runtime.es, index: h.runtime.indices.memories, embedder: h.runtime.models.embedder };
    const ask = (plan: SearchPlan) =>
      executeSearch(deps, { tenant: 'acme', query: 'What painting did Melanie make on 20 June, 2023?', plan, filters: { space_id: 'weekend' } });
    const undated = await ask({ ...RECIPES.bm25, bm25: { ...RECIPES.bm25.bm25, dateBoost: 0 } });
    expect(undated[0]!.provenance.turn_ids).not.toEqual(['J1']);
    expect((await ask(RECIPES.bm25))[0]!.provenance.turn_ids).toEqual(['J1']);
    // Hybrid: the day's turns about it lead, above the other day's, whose words match better.
    const hybrid = await ask(RECIPES.hybrid);
    expect(hybrid.slice(0, 3).map((result) => result.provenance.turn_ids![0]!.charAt(0))).toEqual(['J', 'J', 'J']);
    const undatedHybrid = await ask({ ...RECIPES.hybrid, bm25: { ...RECIPES.hybrid.bm25, dateBoost: 0 } });
    expect(undatedHybrid.slice(0, 3).map((result) => result.provenance.turn_ids![0]!.charAt(0))).toContain('W');
  });

  it('lifts the reply to a question that matched: the answer shares no word with the query', async () => {
    const deps = { es: h.runtime.es, index: h.runtime.indices.memories, embedder: h.runtime.models.embedder };
    const ask = (plan: SearchPlan) =>
      executeSearch(deps, { tenant: 'acme', query: 'What gave Melanie the idea for the colours?', plan: { ...plan, limit: 3 }, filters: { space_id: 'weekend' } });
    const turnsOf = (results: { provenance: { turn_ids?: string[] } }[]) => results.map((result) => result.provenance.turn_ids?.[0]);
    const alone = await ask({ ...RECIPES.hybrid, neighbours: undefined });
    expect(turnsOf(alone)[0]).toBe('J2');
    expect(turnsOf(alone).slice(0, 2)).not.toContain('J3');
    const withNeighbours = await ask(RECIPES.hybrid);
    expect(turnsOf(withNeighbours).slice(0, 2).sort()).toEqual(['J2', 'J3']);
  });

  it('stores a free-form session date as ISO 8601, so date filters work on it', async () => {
    const response = await search({ query: 'gallery painting', top_k: 4, filters: { space_id: 'weekend', occurred_after: '2023-05-01', occurred_before: '2023-05-31' } });
    expect(response.body.results.length).toBeGreaterThan(0);
    expect(response.body.results[0].provenance.session_date).toBe('2023-05-08T13:56:00.000Z');
    expect(response.body.results[0].provenance.document_date).toBe('2023-05-08T13:56:00.000Z');
  });

  it('refuses a session date that is not a date with a 400 naming it, before any job starts', async () => {
    const response = await h.api('POST', '/v1/conversations', {
      body: { session_date: 'whenever we met', messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/whenever we met.*not a date/);
  });

  // Last, as the ranking tests above compare close scores, which more documents' words would shift. One
  // document each, so no memory borrows another's words as neighbouring context.
  const notInEnglish: Record<string, string> = {
    hospital: "Ma sœur travaille à l'hôpital d'Orléans depuis l'année dernière.",
    book: 'मेरे पास एक किताब है।',
    cat: 'मुझे बिल्ली बहुत पसंद है।',
    tea: 'तुम कल सुबह चाय पीने आओगे?',
    school: 'ذَهَبَ مُحَمَّدٌ إِلَى المَدْرَسَةِ.',
    steamer: 'Wir fuhren mit dem Donau\u00addampf\u00adschiff nach Wien.',
  };
  const bm25In = async (space: string, query: string) => {
    const response = await search({ query, mode: 'bm25', filters: { space_id: space } });
    expect(response.status).toBe(200);
    return (response.body.results as { metadata: { doc: string } }[]).map((result) => result.metadata.doc);
  };

  it('finds words of French, Hindi, vowelled Arabic and soft-hyphenated German memories with bm25, and only those', async () => {
    for (const [doc, content] of Object.entries(notInEnglish)) {
      const accepted = await h.api('POST', '/v1/documents', { body: { content, format: 'TXT', scope: { space_id: 'i18n' }, metadata: { doc } } });
      expect(accepted.status).toBe(202);
      expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
    }
    expect(await bm25In('i18n', 'hôpital')).toEqual(['hospital']);
    expect(await bm25In('i18n', "l'hôpital")).toEqual(['hospital']);
    expect(await bm25In('i18n', 'Orléans')).toEqual(['hospital']);
    expect(await bm25In('i18n', 'किताब')).toEqual(['book']);
    expect(await bm25In('i18n', 'बिल्ली')).toEqual(['cat']);
    expect(await bm25In('i18n', 'محمد')).toEqual(['school']);
    expect(await bm25In('i18n', 'مُحَمَّد')).toEqual(['school']);
    expect(await bm25In('i18n', 'المدرسة')).toEqual(['school']);
    expect(await bm25In('i18n', 'Donaudampfschiff')).toEqual(['steamer']);
  });

  it('answers a Chinese query of 3,000 distinct characters (inside the 10,000-character limit) instead of a 400', async () => {
    const ideographs = Array.from({ length: 3000 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
    for (const mode of ['bm25', 'hybrid']) {
      const response = await search({ query: ideographs, mode, filters: { space_id: 'weekend' } });
      expect(response.status).toBe(200);
    }
  });
});
