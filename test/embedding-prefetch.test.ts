import { loadConfig } from '../lib/config';
import type { Embedder } from '../lib/models/embedder';
import { embedPrefetched, prefetchEmbeddings } from '../lib/models/embedding-prefetch';
import { LocalEmbedder } from '../lib/models/local-embedder';

/** Prefetched embeddings (extraction → indexing) with the real local model: same vectors, each text embedded once. */
describe('embedding prefetch', () => {
  const config = loadConfig();
  const model = new LocalEmbedder({ cacheDir: config.CAIRN_CACHE_DIR, log: () => undefined });
  let sent: string[][] = [];
  let failNext = false;
  // The real model, with what it is asked recorded (and one failure on demand).
  const embedder: Embedder = {
    model: model.model,
    dims: model.dims,
    embed: async (texts) => {
      sent.push(texts);
      if (failNext) {
        failNext = false;
        throw new Error('the embedding thread exited (injected)');
      }
      return model.embed(texts);
    },
  };
  beforeEach(() => {
    sent = [];
  });
  afterAll(() => model.close());

  it('gives indexing the prefetched vectors, in order, and embeds only what was not prefetched', async () => {
    const texts = ['Melanie painted a sunrise over the lake.', 'The budget review moved to Monday.', 'Caroline joined a support group.'];
    prefetchEmbeddings(embedder, texts.slice(0, 2));
    const vectors = await embedPrefetched(embedder, [texts[2]!, texts[0]!, texts[1]!, texts[0]!]);
    expect(sent).toEqual([texts.slice(0, 2), [texts[2]]]);
    const direct = await model.embed([texts[2]!, texts[0]!, texts[1]!]);
    for (const [i, expected] of [direct[0], direct[1], direct[2], direct[1]].entries()) {
      expect(vectors[i]!.map((x) => Math.round(x * 1e5))).toEqual(expected!.map((x) => Math.round(x * 1e5)));
    }
  });

  it('takes a prefetched vector once: a second indexing of the same text embeds it again', async () => {
    prefetchEmbeddings(embedder, ['A note about Lisbon.']);
    await embedPrefetched(embedder, ['A note about Lisbon.']);
    await embedPrefetched(embedder, ['A note about Lisbon.']);
    expect(sent).toEqual([['A note about Lisbon.'], ['A note about Lisbon.']]);
  });

  it('embeds at indexing what a failed prefetch could not', async () => {
    failNext = true;
    prefetchEmbeddings(embedder, ['The ferry to Madeira was late.']);
    const [vector] = await embedPrefetched(embedder, ['The ferry to Madeira was late.']);
    expect(vector).toHaveLength(model.dims);
    expect(sent).toHaveLength(2);
  });
});
