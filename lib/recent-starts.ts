import type { IngestWorkflowInput } from '../workflows/ingest';

/**
 * How long a start acknowledged by this process is remembered. Temporal lists a run in visibility only
 * once its visibility task has run: milliseconds on the dev server's SQLite, seconds behind a busy
 * Elasticsearch-backed visibility store.
 */
const REMEMBERED_MS = 30_000;

/**
 * The ingest runs this process started in the last REMEMBERED_MS, oldest first: what a check for a
 * source's open jobs adds to visibility's answer, which may not list them yet. Without them, a source
 * deleted right after a send could be written again by that send's job once the delete had answered.
 * Other processes' starts are not here: they are visibility's alone.
 */
export class RecentStarts {
  private readonly started = new Map<string, { workflowInput: IngestWorkflowInput; at: number }>();

  add(workflowInput: IngestWorkflowInput, now = Date.now()): void {
    const { jobId } = workflowInput;
    this.started.delete(jobId);
    this.started.set(jobId, { workflowInput, at: now });
    this.forgetBefore(now - REMEMBERED_MS);
  }

  /** The tenant's runs started here lately (queued, running or already ended: ask Temporal which). */
  ofTenant(tenant: string, now = Date.now()): IngestWorkflowInput[] {
    this.forgetBefore(now - REMEMBERED_MS);
    return [...this.started.values()].filter(({ workflowInput }) => workflowInput.request.tenant === tenant).map(({ workflowInput }) => workflowInput);
  }

  private forgetBefore(cutoff: number): void {
    for (const [jobId, { at }] of this.started) {
      if (at >= cutoff) break;
      this.started.delete(jobId);
    }
  }
}
