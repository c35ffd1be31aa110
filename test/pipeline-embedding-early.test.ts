import { conversationFixture, markdownFixture } from './fixtures/documents';
import { startHarness, type Harness } from './support/harness';

/**
 * The local extractors keep each chunk's text, so the pipeline hands the model what indexing will
 * embed before extraction runs: a job's texts do not wait for its CPU turn. Each text is still
 * embedded once, conversation turns with their neighbours as indexing embeds them.
 */
describe('embedding before extraction (extractors that keep chunk text)', () => {
  let h: Harness;
  const events: string[] = [];
  const embedded: string[] = [];

  beforeAll(async () => {
    h = await startHarness();
    const embedder = h.runtime.models.embedder!;
    const embed = embedder.embed.bind(embedder);
    embedder.embed = (texts, options) => {
      events.push('embed');
      embedded.push(...texts);
      return embed(texts, options);
    };
    const extractor = h.runtime.models.extractors['long-range'];
    expect(extractor.keepsChunkText).toBe(true);
    const extract = extractor.extract.bind(extractor);
    extractor.extract = (chunks, context) => {
      events.push('extract');
      return extract(chunks, context);
    };
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    events.length = 0;
    embedded.length = 0;
  });

  // Entity names are embedded too (new entities' vectors): only the memories' texts are counted.
  const timesEmbedded = (texts: string[]) => texts.map((text) => embedded.filter((sent) => sent === text).length);

  async function storedTexts(jobId: string): Promise<string[]> {
    const progress = await h.waitForJob('acme', jobId);
    expect(progress.status).toBe('completed');
    await h.runtime.es.indices.refresh({ index: h.runtime.indices.memories });
    const { hits } = await h.runtime.es.search<{ text: string; context?: string; embedding?: number[] }>({
      index: h.runtime.indices.memories,
      size: 100,
      query: { term: { 'provenance.job_id': jobId } },
      _source: ['text', 'context', 'embedding'],
    });
    return hits.hits.map((hit) => {
      expect(hit._source!.embedding).toHaveLength(h.runtime.models.embedder!.dims);
      return hit._source!.context ? `${hit._source!.text}\n${hit._source!.context}` : hit._source!.text;
    });
  }

  it('a document: its chunks go to the model before extraction, and nothing is embedded twice', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: markdownFixture, format: 'MARKDOWN' } });
    expect(accepted.status).toBe(202);
    const texts = await storedTexts(accepted.body.job_id);
    expect(texts.length).toBeGreaterThan(1);
    expect(events[0]).toBe('embed');
    expect(events).toContain('extract');
    expect(timesEmbedded(texts)).toEqual(texts.map(() => 1));
  });

  it('a conversation: each turn with its neighbours, as indexing embeds it, once', async () => {
    const accepted = await h.api('POST', '/v1/conversations', {
      body: { messages: conversationFixture.messages, session_date: conversationFixture.sessionDate },
    });
    expect(accepted.status).toBe(202);
    const texts = await storedTexts(accepted.body.job_id);
    expect(texts).toHaveLength(conversationFixture.messages.length);
    expect(texts.some((text) => text.includes('\n'))).toBe(true);
    expect(events[0]).toBe('embed');
    expect(timesEmbedded(texts)).toEqual(texts.map(() => 1));
  });
});
