import type { Client } from '@elastic/elasticsearch';

/**
 * Makes an index's writes searchable now, for callers that wait on them, without one refresh per
 * write: callers share refreshes. A refresh only shows what had landed when it started, so a caller
 * that asks while one runs waits for the next, which starts as soon as that one ends and serves every
 * caller that asked meanwhile. At most one refresh per index is in flight, however many callers.
 *
 * `refresh=wait_for` on the write shows it at the index's next scheduled refresh instead (up to
 * `refresh_interval`, 1 s): fine for the pipeline, which nobody waits on, but a Tex caller waits for its
 * active fragments, and a client that writes each turn once the last was answered lands just after
 * each scheduled refresh and waits almost the whole second every time.
 */
export class SharedRefresh {
  private running?: Promise<void>;
  private next?: Promise<void>;

  constructor(
    private readonly es: Client,
    private readonly index: string,
  ) {}

  /** Resolves once a refresh that started after this call has completed. */
  refresh(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  /** Whether a refresh is running. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  private start(): Promise<void> {
    const refresh: Promise<void> = this.es.indices
      .refresh({ index: this.index })
      .then(() => undefined)
      .finally(() => {
        if (this.running === refresh) this.running = undefined;
      });
    this.running = refresh;
    return refresh;
  }
}

/** How long a write is given to land before the refresh that shows it is asked for, and then how often again. */
const PROMPT_AFTER_MS = 50;

/**
 * Makes `refresh=wait_for` writes searchable sooner when nothing else would share their refresh. Such
 * a write returns at the index's next scheduled refresh, up to `refresh_interval` (1 s) later: under
 * load one refresh serves many writes and segments stay few, which is why the pipeline writes that
 * way. But when every activity at work in this process is waiting for a refresh (one ingest; the last
 * jobs of a burst, which end together), no other write is coming: each job would only wait out the
 * second, twice (entities, then memories). Then, once the writes have had time to land, the index is
 * refreshed now (one SharedRefresh per index), and that refresh releases them. Either way a write
 * returns searchable; only how soon differs.
 */
export class PromptRefresh {
  private readonly refreshes = new Map<string, SharedRefresh>();
  private waiting = 0;

  /** `running` answers how many activities are at work in this process (ActivitiesInFlight). */
  constructor(
    private readonly es: Client,
    private readonly running: () => number,
    private readonly afterMs = PROMPT_AFTER_MS,
  ) {}

  /** Runs `write`, a request with `refresh: 'wait_for'` on `index`, as a wait for a refresh (see refreshing). */
  write<T>(index: string, write: () => Promise<T>): Promise<T> {
    return this.waitingOn(() => this.refreshing(index, write));
  }

  /**
   * Counts the caller as waiting for a refresh while `wait` runs: a writer that queues its callers
   * behind the write in flight (EntityWriter) counts them here, and sends its writes through `refreshing`.
   */
  async waitingOn<T>(wait: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    try {
      return await wait();
    } finally {
      this.waiting -= 1;
    }
  }

  /** Runs `write` on `index`, refreshing the index while every activity here is waiting for a refresh. */
  async refreshing<T>(index: string, write: () => Promise<T>): Promise<T> {
    let refresh = this.refreshes.get(index);
    if (!refresh) this.refreshes.set(index, (refresh = new SharedRefresh(this.es, index)));
    const shared = refresh;
    // Failures are the write's to report: a refresh that failed only leaves it to the scheduled one.
    const ticking = setInterval(() => {
      if (!shared.busy && this.waiting >= this.running()) shared.refresh().catch(() => undefined);
    }, this.afterMs);
    try {
      return await write();
    } finally {
      clearInterval(ticking);
    }
  }
}
