import { CpuTurns } from '../lib/cpu-turns';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** CpuTurns: the worker's CPU-bound stage work runs one piece at a time, in the order it asked. */
describe('CpuTurns', () => {
  it('runs pieces one at a time in the order they asked, even when each yields part way', async () => {
    const turns = new CpuTurns();
    const events: string[] = [];
    // Three "extractions" of three chunks each, yielding between chunks as the NLP extractor does.
    const piece = (name: string) => async () => {
      for (let chunk = 0; chunk < 3; chunk++) {
        events.push(`${name}${chunk}`);
        await tick();
      }
      return name;
    };
    const results = await Promise.all(['a', 'b', 'c'].map((name) => turns.run(piece(name))));
    expect(results).toEqual(['a', 'b', 'c']);
    // Interleaved, this would read a0 b0 c0 a1 …: the first piece would end last but two.
    expect(events).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'c0', 'c1', 'c2']);
    expect(turns.queued).toBe(0);
  });

  it('passes a failure to its caller and hands the turn on', async () => {
    const turns = new CpuTurns();
    const failing = turns.run(async () => {
      await tick();
      throw new Error('corrupt input');
    });
    const next = turns.run(async () => 'ran');
    await expect(failing).rejects.toThrow('corrupt input');
    await expect(next).resolves.toBe('ran');
  });

  it('calls whileWaiting until the turn comes (a long activity keeps heartbeating), and not after', async () => {
    const turns = new CpuTurns();
    let release!: () => void;
    const holding = turns.run(() => new Promise<void>((resolve) => (release = resolve)));
    let beats = 0;
    let beatsAtStart = -1;
    const waiting = turns.run(
      async () => {
        beatsAtStart = beats;
        await new Promise((resolve) => setTimeout(resolve, 60));
      },
      () => beats++,
      10,
    );
    await new Promise((resolve) => setTimeout(resolve, 55));
    expect(turns.queued).toBe(1);
    release();
    await Promise.all([holding, waiting]);
    expect(beatsAtStart).toBeGreaterThanOrEqual(3);
    // No beats while it ran its own 60 ms: the interval was cleared when its turn came.
    expect(beats).toBe(beatsAtStart);
  });

  it('tells its observer how many pieces wait and how long each waited', async () => {
    const counts: number[] = [];
    const waits: number[] = [];
    const turns = new CpuTurns({ waiting: (pieces) => counts.push(pieces), waited: (ms) => waits.push(ms) });
    const slow = () => new Promise<void>((resolve) => setTimeout(resolve, 30));
    await Promise.all([turns.run(slow), turns.run(slow), turns.run(slow)]);
    // All three asked at once; each left the queue in turn.
    expect(counts).toEqual([1, 2, 3, 2, 1, 0]);
    expect(waits).toHaveLength(3);
    expect(waits[0]).toBeLessThan(25);
    expect(waits[1]).toBeGreaterThanOrEqual(25);
    expect(waits[2]).toBeGreaterThanOrEqual(55);
  });
});
