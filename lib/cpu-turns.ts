/**
 * The worker's CPU-bound stage work (parsing, local NLP extraction), one piece at a time, in the
 * order it asked. A process has one JavaScript thread: interleaved chunk by chunk, a burst of thirty
 * jobs' extractions all ended together (the first 1.6 s in, in bench:ingest), and the embedding
 * model, which starts on a job's memories as soon as its extraction ends (embedding-prefetch.ts),
 * idled until then. In turns, the first job's memories reach the model after its own extraction
 * (0.5 s in) and the rest follow one after another: the same CPU work, in an order that feeds the
 * model sooner and finishes the first jobs first (the burst's first job done after 1.5–2.6 s, not
 * 3.5–3.8). Work in its turn still yields to I/O (timers, sockets, heartbeats); it only keeps other
 * turns waiting.
 */
export class CpuTurns {
  private last: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** `observer` hears how many pieces wait after each change, and how long each waited for its turn. */
  constructor(private readonly observer?: CpuTurnsObserver) {}

  /**
   * Runs `work` once every piece that asked before it has ended. `whileWaiting` is called every
   * `everyMs` until then: a long activity waiting for its turn still heartbeats.
   */
  async run<T>(work: () => Promise<T>, whileWaiting?: () => void, everyMs = 5_000): Promise<T> {
    const before = this.last;
    let release!: () => void;
    this.last = new Promise((resolve) => (release = resolve));
    this.waiting += 1;
    this.observer?.waiting(this.waiting);
    const asked = performance.now();
    const ticking = whileWaiting ? setInterval(whileWaiting, everyMs) : undefined;
    try {
      await before;
    } finally {
      clearInterval(ticking);
      this.waiting -= 1;
      this.observer?.waiting(this.waiting);
      this.observer?.waited(performance.now() - asked);
    }
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Pieces waiting for their turn (not the one running). */
  get queued(): number {
    return this.waiting;
  }
}

export interface CpuTurnsObserver {
  waiting(pieces: number): void;
  waited(ms: number): void;
}
