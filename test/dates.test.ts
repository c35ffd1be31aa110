import { parseLooseDate } from '../lib/domain/dates';
import { readTurnTime } from '../lib/domain/turn-times';
import { NlpExtractor } from '../lib/models/nlp-extractor';
import type { Chunk } from '../lib/domain/document';

describe('dates: read the same on every server, relative to when and where a turn was said', () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it('reads dates without an offset as UTC, whatever the server\'s zone', () => {
    for (const tz of ['UTC', 'Asia/Tokyo', 'America/Los_Angeles']) {
      process.env.TZ = tz;
      expect(parseLooseDate('2023-05-08T10:00:00')?.toISOString()).toBe('2023-05-08T10:00:00.000Z');
      expect(parseLooseDate('2023-05-08')?.toISOString()).toBe('2023-05-08T00:00:00.000Z');
      expect(parseLooseDate('1:56 pm on 8 May, 2023')?.toISOString()).toBe('2023-05-08T13:56:00.000Z');
      expect(parseLooseDate('2022-01-20T08:00+09:00')?.toISOString()).toBe('2022-01-19T23:00:00.000Z');
      expect(parseLooseDate('Mon, 08 May 2023 10:00:00 GMT')?.toISOString()).toBe('2023-05-08T10:00:00.000Z');
      // Ends like an offset, is none.
      expect(parseLooseDate('8-May-2023')?.toISOString().slice(0, 10)).toBe('2023-05-08');
    }
  });

  it('resolves "yesterday" against the turn\'s own timestamp, then the session date, in the zone it states', async () => {
    const extractor = new NlpExtractor('full');
    const context = { documentType: 'ai-chat-conversation', mode: 'long-range', format: 'CONVERSATION' } as const;
    const turn = (text: string, timestamp?: string): Chunk => ({ index: 0, text, tokens: 10, timestamp, speakers: ['Caroline'] });
    // The turn says when it was said: that beats the (later) session date.
    const said = await extractor.extract([turn('Caroline: Yesterday I went to the support group.', '2023-05-08T10:00:00Z')], { ...context, referenceDate: '2023-06-01' });
    expect(said.memories[0]!.eventDates).toEqual(['2023-05-07']);
    // 08:00 in Tokyo is 23:00 UTC the day before: "yesterday" is the Tokyo day before the 20th.
    const tokyo = await extractor.extract([turn('Caroline: Yesterday I went hiking.')], { ...context, referenceDate: '2022-01-20T08:00+09:00' });
    expect(tokyo.memories[0]!.eventDates).toEqual(['2022-01-19']);
  });

  it('puts a month named without a year in the past, or in the future when the sentence is about the future', async () => {
    const extractor = new NlpExtractor('full');
    const datesOf = async (text: string) =>
      (await extractor.extract([{ index: 0, text, tokens: 10 }], { documentType: 'document', mode: 'long-range', format: 'TXT', referenceDate: '2026-11-23T12:00:00Z' })).memories[0]!.eventDates;
    // chrono alone picks the nearest: March 2027 is nearer to 23 November 2026 than March 2026.
    expect(await datesOf('We met in March.')).toEqual(['2026-03-01']);
    expect(await datesOf('I went to Porto on May 5 and loved it.')).toEqual(['2026-05-05']);
    expect(await datesOf('We will visit Porto in June.')).toEqual(['2027-06-01']);
    // Each date by its own sentence.
    expect(await datesOf("In June we moved. We'll fly to Faro in March!")).toEqual(['2026-06-01', '2027-03-01']);
    // A stated year, or a day relative to the reference, is left as chrono reads it.
    expect(await datesOf('The launch will move to March 3, 2025.')).toEqual(['2025-03-03']);
    expect(await datesOf('Yesterday I went hiking.')).toEqual(['2026-11-22']);
  });

  it('reads a dotted numeric date day first (03.04.2024 is 3 April), as it is written where dots are used', async () => {
    const extractor = new NlpExtractor('full');
    const datesOf = async (text: string) =>
      (await extractor.extract([{ index: 0, text, tokens: 10 }], { documentType: 'document', mode: 'long-range', format: 'TXT', referenceDate: '2026-11-23T12:00:00Z' })).memories[0]!.eventDates;
    expect(await datesOf('Anna zog am 03.04.2024 nach Berlin.')).toEqual(['2024-04-03']);
    expect(await datesOf('Мы встретились 12.05.2023 в Москве.')).toEqual(['2023-05-12']);
    expect(await datesOf('The contract was signed on 24.12.2024.')).toEqual(['2024-12-24']);
    // Slashes stay as chrono's English reads them, month first.
    expect(await datesOf('The contract was signed on 03/04/2024.')).toEqual(['2024-03-04']);
  });

  it("reads a Tex turn's timestamp in the write's zone unless it states its own after its time", () => {
    const arrival = new Date('2026-11-24T12:00:00Z');
    const read = (text: string) => readTurnTime(text, ['turns', 0], 'Europe/Berlin', arrival).time;
    // Ends like an offset, is none: a Berlin day (chrono's noon), not a UTC one.
    expect(read('8-May-2023').timestamp).toBe('2023-05-08T10:00:00.000Z');
    // A zone after a time is the time's own.
    expect(read('Mon, 08 May 2023 10:00:00 GMT')).toMatchObject({ timestamp: '2023-05-08T10:00:00.000Z', source: 'explicit' });
    // Relative words keep their meaning whatever zone they name.
    expect(read('yesterday 3pm UTC')).toMatchObject({ timestamp: '2026-11-23T15:00:00.000Z', source: 'relative' });
  });
});
