import { PARSERS } from '../activities/parsers';
import { chunkConversation } from '../lib/chunking/chunk-conversation';
import { chunkSections } from '../lib/chunking/chunk-text';
import { get_encoding } from 'tiktoken';
import { countTokens, tokenSpans } from '../lib/chunking/tokens';
import type { Chunk, ParsedDocument } from '../lib/domain/document';
import { conversationFixture, csvFixture, markdownFixture, textFixture } from './fixtures/documents';

const bytes = (text: string) => new TextEncoder().encode(text);
const options = { maxTokens: 64, overlapTokens: 16 };

/** A chunk's text, minus its heading line, is exactly the parsed text between its offsets. */
function expectExactOffsets(document: ParsedDocument, chunks: Chunk[]) {
  for (const chunk of chunks) {
    const body = chunk.heading ? chunk.text.slice(chunk.heading.length + 1) : chunk.text;
    expect(document.text.slice(chunk.charStart, chunk.charEnd)).toBe(body);
  }
}

describe('chunking: token-bounded, structure-aware, with exact provenance offsets', () => {
  it('splits prose by paragraph, then sentence, within the token budget, with overlap', async () => {
    const document = await PARSERS.TXT(bytes(textFixture(3)), { format: 'TXT' });
    const chunks = await chunkSections(document.sections, options);
    expect(chunks.length).toBeGreaterThan(6);
    for (const chunk of chunks) expect(chunk.tokens).toBeLessThanOrEqual(options.maxTokens);
    expectExactOffsets(document, chunks);
    // Sentences are never cut: every chunk ends at a sentence end.
    for (const chunk of chunks) expect(chunk.text).toMatch(/[.!?]$/);
    // Consecutive chunks in one paragraph overlap (the next starts before the previous ends).
    expect(chunks.some((chunk, i) => i > 0 && chunk.charStart! < chunks[i - 1]!.charEnd!)).toBe(true);
    // A new paragraph starts a new chunk: "Paragraph 2" opens one.
    expect(chunks.some((chunk) => chunk.text.startsWith('Paragraph 2 about the Azores.'))).toBe(true);
  });

  it('has no overlap when configured with none, and covers all the text in order', async () => {
    const document = await PARSERS.TXT(bytes(textFixture(2)), { format: 'TXT' });
    const chunks = await chunkSections(document.sections, { maxTokens: 48, overlapTokens: 0 });
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.charStart!).toBeGreaterThanOrEqual(chunks[i - 1]!.charEnd!);
    const covered = chunks.map((chunk) => chunk.text).join(' ').replace(/\s+/g, ' ');
    expect(covered).toBe(document.text.replace(/\s+/g, ' '));
  });

  it('splits markdown on headings and keeps the heading path, ignoring # lines in code fences', async () => {
    const document = await PARSERS.MARKDOWN(bytes(markdownFixture), { format: 'MARKDOWN' });
    const chunks = await chunkSections(document.sections, options);
    expect(document.title).toBe('Field guide');
    expect(chunks.map((chunk) => chunk.heading)).toEqual(['Field guide', 'Field guide › Trams', 'Field guide › Trams › Tickets', 'Field guide › Food']);
    expect(chunks[2]!.text).toBe('Field guide › Trams › Tickets\nA Viva Viagem card pays for the funicular as well.');
    expect(chunks[1]!.text).toContain('# not a heading inside code');
    expectExactOffsets(document, chunks);
  });

  it('gives timers and sockets turns while it chunks a large document, and reports its progress then', async () => {
    // Heartbeats and other jobs' workflow tasks run on the worker's one thread: a 47-million-character
    // document held it for 59 s without a pause. Here 4 million characters, in paragraphs too long for
    // a chunk and without sentence ends (cut into token windows, the slowest path): what waits on the
    // event loop gets turns while it runs (counted, not timed: a run of its own takes seconds here, and
    // chunking gives way every 50 ms of it), none before it returns when chunking holds the thread.
    const words = ['river', 'stone', 'maple', 'harbor', 'lantern', 'copper', 'meadow', 'falcon', 'orchard', 'violet', 'summit'];
    const paragraph = Array.from({ length: 2000 }, (_, i) => words[(i * 7) % words.length]).join(' ');
    const text = Array.from({ length: 300 }, () => paragraph).join('\n\n');
    let turns = 0;
    let chunking = true;
    const turn = () => {
      if (!chunking) return;
      turns += 1;
      setImmediate(turn);
    };
    setImmediate(turn);
    const progress: number[] = [];
    const chunks = await chunkSections([{ text, charStart: 0 }], { maxTokens: 256, overlapTokens: 32, onProgress: (count) => progress.push(count) });
    chunking = false;
    expect(chunks.length).toBeGreaterThan(1000);
    expect(turns).toBeGreaterThanOrEqual(3);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toBe(chunks.length);
  });

  it('packs small paragraphs together while they fit', async () => {
    const text = 'First short paragraph.\n\nSecond short paragraph.\n\nThird short paragraph.';
    const chunks = await chunkSections([{ text, charStart: 0 }], options);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.text).toBe(text);
  });

  it('never mixes two sections in one chunk, even when both are small', async () => {
    const document = await PARSERS.MARKDOWN(bytes('# A\nalpha one.\n# B\nbeta two.'), { format: 'MARKDOWN' });
    const chunks = await chunkSections(document.sections, { maxTokens: 512, overlapTokens: 64 });
    expect(chunks.map((chunk) => chunk.text)).toEqual(['A\nalpha one.', 'B\nbeta two.']);
  });

  it('packs CSV rows whole, without overlap, each row readable as column: value', async () => {
    const document = await PARSERS.CSV(bytes(csvFixture), { format: 'CSV' });
    const small = await chunkSections(document.sections, { maxTokens: 30, overlapTokens: 16 });
    expect(small.length).toBeGreaterThan(1);
    for (const chunk of small) {
      for (const line of chunk.text.split('\n')) expect(line).toMatch(/^city: \w+ \| country: \w+ \| population: \d+$/);
    }
    expect(small.map((chunk) => chunk.text).join('\n').split('\n')).toHaveLength(4);
    expectExactOffsets(document, small);
  });

  it('cuts an over-long sentence into token windows that keep exact offsets, even in multi-byte text', async () => {
    const text = 'ação '.repeat(300) + '日本語のテキスト'.repeat(40);
    const spans = tokenSpans(text, 50);
    expect(spans.length).toBeGreaterThan(5);
    expect(spans.map(({ start, end }) => text.slice(start, end)).join('')).toBe(text);
    for (const { start, end } of spans) expect(countTokens(text.slice(start, end))).toBeLessThanOrEqual(50);
    const chunks = await chunkSections([{ text, charStart: 0 }], options);
    for (const chunk of chunks) expect(chunk.tokens).toBeLessThanOrEqual(options.maxTokens);
    // Emoji (one character, several tokens), accents and CJK with no sentence break: every chunk within
    // the budget, no character cut in half, and the chunks cover the text in order.
    const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    for (const sample of ['😀🎉👍🏽 '.repeat(300), 'naïve café résumé 東京 😀 '.repeat(150), '😀'.repeat(500), ` ${'naïve '.repeat(32)}`, '我们今天去公园散步，天气很好，'.repeat(200), '𝓐𝓑𝓒𝓓𝓔𝓕'.repeat(500)]) {
      const windows = await chunkSections([{ text: sample, charStart: 0 }], { maxTokens: 64, overlapTokens: 0 });
      for (const chunk of windows) {
        expect(countTokens(chunk.text)).toBeLessThanOrEqual(64);
        expect(chunk.text).not.toMatch(lone);
      }
      expect(windows.map((chunk) => chunk.text).join('').replace(/\s/g, '')).toBe(sample.replace(/\s/g, ''));
    }
  });

  it('ends sentences at the full stops of Chinese, Japanese and Hindi, so a long paragraph is cut between sentences, not mid-word', async () => {
    const samples = [
      '李明上个月搬到了上海，现在在一家医院当医生。他每个周末都去图书馆看书，也喜欢在公园里跑步。',
      '田中さんは毎朝六時に起きて、公園を散歩してから会社に行きます。「週末は山に登ります。」',
      'मेरी बहन दिल्ली के एक बड़े अस्पताल में डॉक्टर है। वह हर रविवार को अपने परिवार से मिलने आती है।',
    ];
    for (const sentences of samples) {
      const text = sentences.repeat(12);
      const chunks = await chunkSections([{ text, charStart: 0 }], { maxTokens: 96, overlapTokens: 0 });
      expect(chunks.length).toBeGreaterThan(1);
      for (const chunk of chunks) {
        expect(chunk.tokens).toBeLessThanOrEqual(96);
        // Every chunk is whole sentences: it ends at a full stop (or a closing quote after one).
        expect(chunk.text.trim()).toMatch(/[。।」]$/);
        expect(text.slice(chunk.charStart, chunk.charEnd)).toBe(chunk.text);
      }
    }
  });

  it('tokenizes a megabyte with no break in it (tiktoken alone panics on it) and counts ordinary prose exactly', () => {
    for (const text of [' '.repeat(1_000_000), 'x'.repeat(400_000), 'a' + '\u00a0'.repeat(100_000) + 'b']) {
      const spans = tokenSpans(text, 256);
      expect(spans.map(({ start, end }) => text.slice(start, end)).join('')).toBe(text);
      expect(countTokens(text)).toBeGreaterThan(0);
    }
    const prose = Array.from({ length: 200 }, (_, i) => `Sentence ${i}: the ferry to Madeira leaves from dock seven at dawn, café naïve 😀.`).join(' ');
    expect(countTokens(prose)).toBe(get_encoding('cl100k_base').encode_ordinary(prose).length);
  });

  it('chunks conversations turn by turn, keeping speaker, turn position and timestamp', async () => {
    const document = await PARSERS.CONVERSATION(bytes(JSON.stringify(conversationFixture)), { format: 'CONVERSATION' });
    const one = chunkConversation(document.turns!, { maxTokens: 256, maxTurns: 1 });
    expect(one).toHaveLength(3);
    expect(one[1]).toMatchObject({ turnStart: 1, turnEnd: 1, speakers: ['Melanie'], timestamp: '2023-05-08T13:57:00Z' });
    expect(one[1]!.text).toMatch(/^Melanie: That sounds wonderful/);
    const few = chunkConversation(document.turns!, { maxTokens: 256, maxTurns: 2 });
    expect(few.map((chunk) => [chunk.turnStart, chunk.turnEnd])).toEqual([[0, 1], [2, 2]]);
    expect(few[0]!.speakers).toEqual(['Caroline', 'Melanie']);
  });
});
