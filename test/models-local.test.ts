import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../lib/config';
import { LocalEmbedder } from '../lib/models/local-embedder';
import { LOCAL_MODEL, isLocalModelInstalled, localModelDir } from '../lib/models/install';
import { NlpExtractor } from '../lib/models/nlp-extractor';

const cosine = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);

describe('local embedding model (all-MiniLM-L6-v2, offline, in-process)', () => {
  const config = loadConfig();
  const embedder = new LocalEmbedder({ cacheDir: config.CAIRN_CACHE_DIR, log: () => undefined });
  afterAll(() => embedder.close());

  it('is installed in the cache outside the repository, with an ONNX graph', async () => {
    await embedder.start();
    expect(isLocalModelInstalled(config.CAIRN_CACHE_DIR)).toBe(true);
    const dir = localModelDir(config.CAIRN_CACHE_DIR);
    expect(dir.startsWith(process.cwd())).toBe(false);
    expect(fs.statSync(path.join(dir, 'onnx', 'model.onnx')).size).toBeGreaterThan(80_000_000);
  });

  it('produces 384-d unit vectors that match sentence-transformers', async () => {
    const [dogs, puppies, stocks] = await embedder.embed(['I love dogs', 'I adore puppies', 'The stock market fell']);
    expect(embedder.model).toBe('all-MiniLM-L6-v2');
    expect(dogs).toHaveLength(LOCAL_MODEL.dims);
    expect(Math.sqrt(cosine(dogs!, dogs!))).toBeCloseTo(1, 5);
    // sentence-transformers/all-MiniLM-L6-v2 gives 0.6831 for this pair.
    expect(cosine(dogs!, puppies!)).toBeCloseTo(0.6831, 3);
    expect(cosine(dogs!, stocks!)).toBeLessThan(0.1);
  });

  it('embeds batches in input order, deterministically, and truncates overlong text instead of failing', async () => {
    const texts = ['short', 'a '.repeat(2000) + 'end', 'I love dogs', ''];
    const first = await embedder.embed(texts);
    const again = await embedder.embed([texts[2]!]);
    expect(first).toHaveLength(4);
    expect(cosine(first[2]!, again[0]!)).toBeCloseTo(1, 5);
    expect(cosine(first[0]!, first[2]!)).toBeLessThan(0.99);
  });

  it('gives every concurrent caller its own vectors, in its order, whichever thread and batch embedded them', async () => {
    // Several callers at once, texts of very different lengths: the round is sorted by length and cut
    // into micro-batches spread over the threads, and each vector must still find its way back.
    const words = (n: number, seed: string) => Array.from({ length: n }, (_, i) => `${seed}${i % 7}`).join(' ');
    const callers = Array.from({ length: 6 }, (_, c) => Array.from({ length: 5 + c * 3 }, (_, i) => words(1 + ((i * 37 + c * 11) % 90), `w${c}x${i}`)));
    const together = await Promise.all(callers.map((texts) => embedder.embed(texts)));
    for (const [c, texts] of callers.entries()) {
      const alone = await embedder.embed(texts);
      expect(together[c]).toHaveLength(texts.length);
      together[c]!.forEach((vector, i) => expect(cosine(vector, alone[i]!)).toBeCloseTo(1, 4));
    }
  });

  it('runs an urgent request before queued background work, with the same vectors', async () => {
    // Two backlogs of 400 texts (two rounds of 25 micro-batches each), then one urgent text.
    const backlog = (name: string) => Array.from({ length: 400 }, (_, i) => `${name} note ${i} about the harbour budget and the ferry timetable in Porto`);
    let firstDone = false;
    const first = embedder.embed(backlog('first')).then((vectors) => ((firstDone = true), vectors));
    const second = embedder.embed(backlog('second'));
    const [urgent] = await embedder.embed(['I love dogs'], { urgent: true });
    // It ran after at most the micro-batches already running, not after the first backlog's round
    // (nor the second's, which a request in turn would have waited for too).
    expect(firstDone).toBe(false);
    const [calm] = await embedder.embed(['I love dogs']);
    expect(cosine(urgent!, calm!)).toBeCloseTo(1, 5);
    expect(await first).toHaveLength(400);
    expect(await second).toHaveLength(400);
  });

  it('bounds a micro-batch by its padded size: chunk-sized texts run one at a time, short names share runs', async () => {
    await embedder.start();
    const threads = (embedder as unknown as { threads: { worker: { postMessage(message: { texts?: string[] }): void } }[] }).threads;
    const runs: string[][] = [];
    const restore = threads.map(({ worker }) => {
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message) => {
        if (message.texts) runs.push(message.texts);
        post(message);
      };
      return () => (worker.postMessage = post);
    });
    try {
      const chunks = Array.from({ length: 6 }, (_, i) => `Chunk ${i}: ${'the ferry to the island left late again. '.repeat(18)}`);
      const names = Array.from({ length: 40 }, (_, i) => `Name ${i}`);
      const [chunkVectors, nameVectors] = await Promise.all([embedder.embed(chunks), embedder.embed(names)]);
      expect(chunkVectors).toHaveLength(6);
      expect(nameVectors).toHaveLength(40);
      // ~760 characters each: two would pad past the budget (about 300 tokens).
      for (const run of runs.filter((texts) => texts.some((text) => text.startsWith('Chunk')))) expect(run).toHaveLength(1);
      // The names still go 32 at a time (then the last 8): not one run each.
      expect(runs.filter((texts) => texts.every((text) => text.startsWith('Name'))).map((texts) => texts.length)).toEqual([32, 8]);
    } finally {
      restore.forEach((undo) => undo());
    }
  });

  // Linux tells a thread its CPU time (/proc/thread-self); elsewhere cpuMs is undefined.
  (process.platform === 'linux' ? it : it.skip)("tells its inference threads' CPU time, which grows with the work they do", async () => {
    await embedder.embed(['warm']);
    const before = embedder.cpuMs!;
    expect(before).toBeGreaterThan(0);
    const started = process.cpuUsage();
    await embedder.embed(Array.from({ length: 24 }, (_, i) => `Chunk ${i}: ${'the ferry to the island left late again. '.repeat(15)}`));
    const processMs = (({ user, system }) => (user + system) / 1000)(process.cpuUsage(started));
    const grew = embedder.cpuMs! - before;
    // The model's part of the process's CPU over the same work: most of it, never more.
    expect(grew).toBeGreaterThan(processMs * 0.5);
    expect(grew).toBeLessThanOrEqual(processMs * 1.05);
  });

  it('fails what a dead inference thread was running, and starts afresh on the next call', async () => {
    // A thread that goes away with work handed to it: told to exit just before its next batch arrives.
    const threads = (embedder as unknown as { threads: { worker: { postMessage(message: unknown): void } }[] }).threads;
    expect(threads.length).toBeGreaterThan(0);
    threads[0]!.worker.postMessage({ exit: true });
    const pending = embedder.embed(Array.from({ length: 64 }, (_, i) => `sentence number ${i} about the harbour`));
    await expect(pending).rejects.toThrow(/embedding thread exited/);
    const [dogs, puppies] = await embedder.embed(['I love dogs', 'I adore puppies']);
    expect(cosine(dogs!, puppies!)).toBeCloseTo(0.6831, 3);
  });
});

describe('local NLP extractor', () => {
  const chunk = (index: number, text: string, speakers = ['Caroline']) => ({ index, text, tokens: 20, speakers });
  const context = { documentType: 'ai-chat-conversation' as const, mode: 'long-range' as const, format: 'CONVERSATION', referenceDate: '1:56 pm on 8 May, 2023' };

  it('types memories, resolves dates against the session date and finds people, places and organisations', async () => {
    const { memories, usage } = await new NlpExtractor('full').extract(
      [
        chunk(0, 'Caroline: I went to the support group in Boston with Melanie yesterday.'),
        chunk(1, 'Caroline: I really love painting sunsets, it is my favorite hobby.'),
        chunk(2, 'Caroline: I feel so grateful for my friends.'),
        chunk(3, 'Caroline: Hey, how are you?'),
      ],
      context,
    );
    expect(memories.map((m) => m.type)).toEqual(['temporal_event', 'preference', 'emotion', 'episode']);
    expect(memories[0]!.eventDates).toEqual(['2023-05-07']);
    expect(memories[0]!.text).toBe('Caroline: I went to the support group in Boston with Melanie yesterday.');
    expect(memories[0]!.entities).toEqual(expect.arrayContaining([
      { name: 'Caroline', type: 'person' },
      { name: 'Melanie', type: 'person' },
      { name: 'Boston', type: 'place' },
    ]));
    for (const memory of memories) expect(memory.confidence).toBeGreaterThan(0);
    expect(usage.tokensIn).toBeGreaterThan(0);
  });

  it('names an entity without the markup, separators or possessive around it in the text', async () => {
    const document = { documentType: 'document' as const, mode: 'long-range' as const, format: 'MARKDOWN', referenceDate: '2023-06-09' };
    const names = async (text: string) => (await new NlpExtractor('full').extract([{ index: 0, text, tokens: 20 }], document)).memories.flatMap((m) => m.entities);
    expect(await names("# Caroline's plans\n\nCaroline wants to visit Melanie's sister.")).toEqual([
      { name: 'Caroline', type: 'person' },
      { name: 'Melanie', type: 'person' },
    ]);
    expect(await names('name | city\nCaroline | Boston\nMelanie | Denver')).toEqual(expect.arrayContaining([
      { name: 'Caroline', type: 'person' },
      { name: 'Melanie', type: 'person' },
      { name: 'Boston', type: 'place' },
    ]));
  });

  it('does not read a span of time as a date: "for 4 years" is not four years from now', async () => {
    const { memories } = await new NlpExtractor('full').extract(
      [chunk(0, "Caroline: I've known these friends for 4 years."), chunk(1, 'Caroline: I will travel for 3 weeks in May.')],
      context,
    );
    expect(memories[0]!.eventDates).toBeUndefined();
    expect(memories[1]!.eventDates).toEqual(['2024-05-01']);
  });

  it('fast mode skips the part-of-speech parse: only speakers become entities', async () => {
    const { memories } = await new NlpExtractor('fast').extract([chunk(0, 'Caroline: I met Melanie in Boston.')], context);
    expect(memories[0]!.entities).toEqual([{ name: 'Caroline', type: 'person' }]);
  });

  it('does not make chat roles into people', async () => {
    const { memories } = await new NlpExtractor('full').extract([chunk(0, 'user: I am allergic to shellfish.', ['user'])], context);
    expect(memories[0]!.entities).toEqual([]);
  });
});
