import { loadConfig } from '../lib/config';
import { CairnError } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { createOpenAIClient } from '../lib/models/openai-client';
import { OpenAIEmbedder } from '../lib/models/openai-embedder';
import { OpenAIExtractor } from '../lib/models/openai-extractor';
import { createModelProviders } from '../lib/models/providers';
import { startOpenAITestDouble, type OpenAITestDouble } from './support/openai-test-double';

/** The OpenAI path against a local OpenAI-compatible TEST DOUBLE (OpenAI itself is unreachable here). */
describe('OpenAI providers (against a local test double)', () => {
  let double: OpenAITestDouble;
  const clientFor = (maxRetries = 3) => createOpenAIClient({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: double.baseUrl }, { maxRetries });
  beforeAll(async () => {
    double = await startOpenAITestDouble(8);
  });
  afterAll(() => double.close());
  beforeEach(() => {
    double.requests.length = 0;
  });

  it('embeds through /v1/embeddings with the configured model, key and dimensions, in input order', async () => {
    const embedder = new OpenAIEmbedder(clientFor(), 'text-embedding-3-small', 8);
    const vectors = await embedder.embed(['alpha', 'beta', '']);
    expect(vectors).toHaveLength(3);
    expect(vectors[0]).toHaveLength(8);
    expect(embedder.model).toBe('openai/text-embedding-3-small@8');
    const request = double.requests[0]!;
    expect(request.path).toBe('/v1/embeddings');
    expect(request.headers.authorization).toBe('Bearer sk-test');
    expect(request.body).toMatchObject({ model: 'text-embedding-3-small', input: ['alpha', 'beta', ' '], dimensions: 8, encoding_format: 'float' });
  });

  it('retries 429 and 5xx answers, then succeeds', async () => {
    const embedder = new OpenAIEmbedder(clientFor(), 'text-embedding-3-small', 8);
    double.failNext(429);
    double.failNext(503);
    const vectors = await embedder.embed(['gamma']);
    expect(vectors).toHaveLength(1);
    expect(double.requests).toHaveLength(3);
  });

  it('gives up with a retryable upstream failure when the server keeps failing', async () => {
    const embedder = new OpenAIEmbedder(clientFor(1), 'text-embedding-3-small', 8);
    double.failNext(500, 2); // one try and the one retry clientFor(1) allows
    const error = await embedder.embed(['delta']).catch((e) => e);
    expect(error).toBeInstanceOf(CairnError);
    expect(error.code).toBe('upstream_failure');
    expect(error.retryable).toBe(true);
  });

  it('treats content the server refuses (too long, filtered) as bad input, and configuration errors (400, 401) as something to wait out', async () => {
    const embedder = new OpenAIEmbedder(clientFor(0), 'text-embedding-3-small', 8);
    double.failNext(400, 1, 'context_length_exceeded');
    expect(await embedder.embed(['too long']).catch((e) => e)).toMatchObject({ code: 'bad_input', retryable: false });
    // A parameter the model does not take: the operator fixes the configuration, the job waits.
    double.failNext(400, 1, 'unsupported_parameter');
    expect(await embedder.embed(['delta']).catch((e) => e)).toMatchObject({ code: 'upstream_failure', retryable: true });
    double.failNext(401);
    expect(await embedder.embed(['epsilon']).catch((e) => e)).toMatchObject({ code: 'upstream_failure', retryable: true });
    const extractor = new OpenAIExtractor(clientFor(0), 'gpt-4o-mini', 'long-range');
    double.failNext(400, 1, 'content_filter');
    const chunk = { index: 0, text: 'Some text.', tokens: 3 };
    expect(await extractor.extract([chunk], { documentType: 'document', mode: 'long-range', format: 'TXT' }).catch((e) => e)).toMatchObject({ code: 'bad_input', retryable: false });
    double.failNext(503);
    expect(await extractor.extract([chunk], { documentType: 'document', mode: 'long-range', format: 'TXT' }).catch((e) => e)).toMatchObject({ code: 'upstream_failure', retryable: true });
  });

  it('refuses vectors whose size differs from what the index expects', async () => {
    const embedder = new OpenAIEmbedder(clientFor(), 'my-compatible-model', 16);
    // A compatible server's model must state its size; the double honours `dimensions`, else answers 8-d.
    await expect(embedder.embed(['x'])).resolves.toHaveLength(1);
    const mismatched = new OpenAIEmbedder(clientFor(), 'text-embedding-3-small');
    await expect(mismatched.embed(['x'])).rejects.toThrow(/expects 1536/);
  });

  it('extracts with a strict JSON schema generated from the zod schema and parses the structured answer', async () => {
    double.chatContent = () =>
      JSON.stringify({
        memories: [
          { chunk_index: 0, text: 'Caroline went to a support group on 2023-05-07.', type: 'temporal_event', confidence: 0.9, entities: [{ name: 'Caroline', type: 'person' }], event_dates: ['2023-05-07'] },
          { chunk_index: 7, text: 'Belongs to no chunk we sent.', type: 'fact', confidence: 1, entities: [], event_dates: [] },
        ],
      });
    const extractor = new OpenAIExtractor(clientFor(), 'gpt-4o-mini', 'long-range');
    double.failNext(500);
    const { memories, usage } = await extractor.extract([{ index: 0, text: 'Caroline: I went to the support group yesterday.', tokens: 12 }], {
      documentType: 'ai-chat-conversation',
      mode: 'long-range',
      format: 'CONVERSATION',
      referenceDate: '2023-05-08',
    });
    // One chunk sent: a memory naming another chunk can only be this one's.
    expect(memories).toEqual([
      { text: 'Caroline went to a support group on 2023-05-07.', type: 'temporal_event', confidence: 0.9, entities: [{ name: 'Caroline', type: 'person' }], eventDates: ['2023-05-07'], chunkIndex: 0 },
      { text: 'Belongs to no chunk we sent.', type: 'fact', confidence: 1, entities: [], eventDates: [], chunkIndex: 0 },
    ]);
    expect(usage.tokensIn).toBeGreaterThan(20);
    expect(usage.tokensOut).toBeGreaterThan(10);
    const request = double.requests.at(-1)!;
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.body.model).toBe('gpt-4o-mini');
    expect(request.body.response_format.type).toBe('json_schema');
    expect(request.body.response_format.json_schema.strict).toBe(true);
    const schema = request.body.response_format.json_schema.schema;
    expect(schema.properties.memories.items.properties.type.enum).toEqual(['fact', 'preference', 'episode', 'emotion', 'temporal_event']);
    expect(schema.properties.memories.items.additionalProperties).toBe(false);
    expect(request.body.messages[0].content).toContain('2023-05-08');
  });

  it('treats an answer that breaks the schema, or was cut off, as bad input (asking again gets the same), not as memories', async () => {
    double.chatContent = () => JSON.stringify({ memories: [{ chunk_index: 0, text: 'x', type: 'gossip' }] });
    const extractor = new OpenAIExtractor(clientFor(), 'gpt-4o-mini', 'fast');
    const context = { documentType: 'note', mode: 'fast', format: 'TXT' } as const;
    expect(await extractor.extract([{ index: 0, text: 'hello', tokens: 1 }], context).catch((e) => e)).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/does not match the schema/) });
    double.chatContent = () => '{"memories": [{"chunk_index": 0, "text": "cut';
    expect(await extractor.extract([{ index: 0, text: 'hello', tokens: 1 }], context).catch((e) => e)).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/not JSON/) });
    // Of several chunks sent, memories naming others are left out; none naming a chunk sent is the
    // batch's failure, saying so (the job completed with no memories and no error).
    const two = [{ index: 3, text: 'hello', tokens: 1 }, { index: 4, text: 'there', tokens: 1 }];
    const memory = (chunk: number) => ({ chunk_index: chunk, text: `about chunk ${chunk}`, type: 'fact', confidence: 1, entities: [], event_dates: [] });
    double.chatContent = () => JSON.stringify({ memories: [memory(4), memory(1003)] });
    expect((await extractor.extract(two, context)).memories.map((m) => m.chunkIndex)).toEqual([4]);
    double.chatContent = () => JSON.stringify({ memories: [memory(1003), memory(1004)] });
    expect(await extractor.extract(two, context).catch((e) => e)).toMatchObject({ code: 'bad_input', message: expect.stringMatching(/name chunks that were not sent \(1003, 1004; sent 3, 4/) });
    // No choice at all is the server's failure this once: retryable, not the content's fault.
    double.chatContent = () => undefined;
    expect(await extractor.extract(two, context).catch((e) => e)).toMatchObject({ code: 'upstream_failure', message: expect.stringMatching(/no choices/) });
  });

  it('is chosen when OPENAI_API_KEY is set, honouring OPENAI_BASE_URL', async () => {
    const config = loadConfig({ ...process.env, OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: double.baseUrl, OPENAI_EMBEDDING_DIMS: '8' });
    const providers = await createModelProviders(config, createLogger('silent', 'test'));
    expect(providers.embedder?.model).toBe('openai/text-embedding-3-small@8');
    expect(providers.extractors.fast.name).toBe('openai-fast/gpt-4o-mini');
    expect(providers.extractors['long-range'].name).toBe('openai-long-range/gpt-4o-mini');
    await providers.close();
  });

  it('refuses a provider set to openai without OPENAI_API_KEY, rather than running the local model under it', async () => {
    const { OPENAI_API_KEY: _key, ...env } = process.env;
    for (const variable of ['EMBEDDING_PROVIDER', 'EXTRACTION_PROVIDER']) {
      const config = loadConfig({ ...env, [variable]: 'openai' });
      await expect(createModelProviders(config, createLogger('silent', 'test'))).rejects.toThrow(`${variable}=openai needs OPENAI_API_KEY`);
    }
  });

  it('refuses a Temporal address with a scheme, and an Elasticsearch URL that is not http(s), naming them', () => {
    expect(() => loadConfig({ ...process.env, TEMPORAL_ADDRESS: 'http://127.0.0.1:7233' })).toThrow(/TEMPORAL_ADDRESS: must be host:port/);
    expect(() => loadConfig({ ...process.env, ELASTICSEARCH_URL: 'htp:/127.0.0.1:9200' })).toThrow(/ELASTICSEARCH_URL: must be an http/);
    expect(loadConfig({ ...process.env, TEMPORAL_ADDRESS: 'temporal.internal:7233' }).temporalAddress).toBe('temporal.internal:7233');
  });
});
