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
