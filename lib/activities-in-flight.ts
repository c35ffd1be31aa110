/**
 * How many activities this worker process is running right now. A write that waits to be searchable
 * asks whether anything else is at work here (PromptRefresh): if every running activity is itself
 * waiting for a refresh, nothing would come to share the next scheduled one.
 */
export class ActivitiesInFlight {
  private running = 0;

  /** `activity`, counted while it runs. */
  counting<F extends (...args: never[]) => Promise<unknown>>(activity: F): F {
    return (async (...args: Parameters<F>) => {
      this.running += 1;
      try {
        return await activity(...args);
      } finally {
        this.running -= 1;
      }
    }) as F;
  }

  get size(): number {
    return this.running;
  }
}
