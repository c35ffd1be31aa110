import { countTokens } from '../lib/chunking/tokens';
import { ensureIndices } from '../lib/elasticsearch/indices';
import { embeddingSpec } from '../lib/models/providers';
import { startHarness, type Harness } from './support/harness';

describe('foundation: a text becomes searchable memories through a real workflow', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('answers /healthz with 200 when Temporal and Elasticsearch are reachable', async () => {
    const response = await h.api('GET', '/healthz', { key: null });
    expect(response.status).toBe(200);
    expect(response.body.checks).toMatchObject({ elasticsearch: 'ok', temporal: 'ok' });
  });

  it('refuses requests without a valid key', async () => {
    expect((await h.api('GET', '/v1/jobs/x', { key: null })).status).toBe(401);
    expect((await h.api('GET', '/v1/jobs/x', { key: 'nope' })).status).toBe(401);
  });

  it('chunks a text by tokens, indexes the chunks and reports progress from workflow state', async () => {
    const paragraph = (n: number) => `Paragraph ${n}. ` + 'Cairn keeps durable memories for agents. '.repeat(30);
    const content = [1, 2, 3, 4].map(paragraph).join('\n\n');
    const accepted = await h.api('POST', '/v1/documents', { body: { content, format: 'TXT', document_id: 'doc-1' } });
    expect(accepted.status).toBe(202);
    expect(accepted.body.status).toBe('queued');

    const progress = await h.waitForJob('acme', accepted.body.job_id);
    expect(progress.status).toBe('completed');
    expect(progress.counts.chunks).toBeGreaterThan(1);
    expect(progress.memories_created).toBe(progress.counts.chunks);
    for (const stage of ['fetch', 'parse', 'chunk', 'extract', 'resolve-entities', 'index'] as const) {
      expect(progress.stages[stage].state).toBe('completed');
    }

    const { hits } = await h.runtime.es.search({
      index: h.runtime.indices.memories,
      query: { bool: { filter: [{ term: { tenant: 'acme' } }, { term: { 'provenance.job_id': accepted.body.job_id } }] } },
      size: 100,
    });
    expect(hits.hits).toHaveLength(progress.counts.chunks);
    const chunkTexts = hits.hits.map((hit: any) => hit._source.text as string);
    expect(chunkTexts.some((text) => text.includes('Paragraph 3'))).toBe(true);
    // Token budget respected (with room for the overlap's tail sentence).
    for (const text of chunkTexts) expect(countTokens(text)).toBeLessThanOrEqual(h.config.CHUNK_TOKENS + 8);

    const polled = await h.api('GET', `/v1/jobs/${accepted.body.job_id}`);
    expect(polled.status).toBe(200);
    expect(polled.body.status).toBe('completed');
    // Another tenant cannot see the job.
    expect((await h.api('GET', `/v1/jobs/${accepted.body.job_id}`, { key: h.keys.globex })).status).toBe(404);
  });

  it('tags the workflow with Cairn search attributes visible to Temporal visibility', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'A short note about Lisbon.', format: 'TXT' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const description = await h.jobs.handle('acme', accepted.body.job_id).describe();
    const attributes = description.typedSearchAttributes;
    const value = (name: string) => attributes.getAll().find((pair) => pair.key.name === name)?.value;
    expect(value('CairnTenant')).toBe('acme');
    expect(value('CairnFormat')).toBe('TXT');
    expect(value('CairnStatus')).toBe('completed');
  });

  it('rejects bad input with a 400 naming the field, never a 5xx', async () => {
    const response = await h.api('POST', '/v1/documents', { body: { format: 'TXT' } });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/content/);
    const malformed = await h.api('POST', '/v1/documents', { body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
  });

  it('refreshes the indices searched while written every second, and lets the others go search-idle', async () => {
    const es = h.runtime.es;
    const interval = async (alias: string) =>
      Object.values(await es.indices.getSettings({ index: alias, name: 'index.refresh_interval' }))[0]?.settings?.index?.refresh_interval;
    const { memories, entities, jobs, sources, sequences } = h.runtime.indices;
    expect([await interval(memories), await interval(entities)]).toEqual(['1s', '1s']);
    expect([await interval(jobs), await interval(sources), await interval(sequences)]).toEqual([undefined, undefined, undefined]);

    // An index created before (every index had an explicit 1 s) goes back to the default at start-up;
    // an interval set by hand is kept.
    await es.indices.putSettings({ index: jobs, settings: { index: { refresh_interval: '1s' } } });
    await es.indices.putSettings({ index: sources, settings: { index: { refresh_interval: '30s' } } });
    await ensureIndices(es, h.config.ELASTICSEARCH_INDEX_PREFIX, embeddingSpec(h.runtime.models.embedder));
    expect([await interval(jobs), await interval(sources), await interval(memories)]).toEqual([undefined, '30s', '1s']);
    await es.indices.putSettings({ index: sources, settings: { 'index.refresh_interval': null } });
  });
});
