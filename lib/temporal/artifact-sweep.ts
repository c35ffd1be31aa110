import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { blobKeys, isDerivedArtifact, type BlobStore } from '../blob/store';
import { parseIngestWorkflowId } from '../ids';
import type { Logger } from '../logger';

const EVERY_MS = 10 * 60_000;
/** How far back each periodic sweep looks: several sweeps see each run, in case one failed. */
const LOOKBACK_MS = 60 * 60_000;
/**
 * How long a run has been closed before its artifacts go: an activity still running when its
 * workflow was terminated may write one more, and an operator may reset the run, which reads them.
 */
const SETTLE_MS = 10 * 60_000;

/**
 * The derived artifacts (blob/store.ts: isDerivedArtifact) of jobs whose workflow closed without
 * recording its outcome — terminated (`temporal workflow terminate`, or by Temporal at its history
 * limit) or timed out — whose summary's writer, which drops a job's artifacts, never ran. Their input
 * stays, for a retry. A worker sweeps at start every such run that visibility still lists (the
 * namespace's retention), then every 10 minutes those closed in the last hour; a run whose workflow
 * id has run again since (a reset, a re-send under a job id derived from what the caller sent) is
 * left alone. Of one that starts again as the sweep deletes, only what was written before the closed
 * run settled goes: the new run's artifacts, under the same keys, are not the closed run's to drop.
 */
export class ArtifactSweep {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly client: Client,
    private readonly blobs: BlobStore,
    private readonly taskQueue: string,
    private readonly log: Logger,
    private readonly settleMs = SETTLE_MS,
  ) {}

  /** Drops the artifacts of such runs closed after `since` (any time when absent); answers how many jobs had some. */
  async sweep(since?: Date): Promise<number> {
    const closedBefore = new Date(Date.now() - this.settleMs);
    const query = [
      'WorkflowType = "ingestWorkflow"',
      `TaskQueue = "${this.taskQueue}"`,
      'ExecutionStatus IN ("Terminated", "TimedOut")',
      `CloseTime < "${closedBefore.toISOString()}"`,
      ...(since ? [`CloseTime > "${since.toISOString()}"`] : []),
    ].join(' AND ');
    let swept = 0;
    for await (const execution of this.client.workflow.list({ query })) {
      const job = parseIngestWorkflowId(execution.workflowId);
      if (!job || !execution.closeTime || !(await this.stillClosed(execution.workflowId, execution.runId))) continue;
      if ((await this.dropArtifacts(job.tenant, job.jobId, new Date(execution.closeTime.getTime() + this.settleMs))) > 0) swept += 1;
    }
    return swept;
  }

  start(): void {
    const run = (since?: Date) =>
      this.sweep(since)
        .then((swept) => swept > 0 && this.log.info({ jobs: swept }, 'dropped the derived artifacts of jobs whose workflow was terminated or timed out'))
        .catch((error) => this.log.warn({ err: error }, 'could not sweep the artifacts of terminated jobs; trying again in 10 minutes'))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(() => run(new Date(Date.now() - LOOKBACK_MS)), EVERY_MS);
          this.timer.unref();
        });
    void run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * The job's derived artifacts written before `settledAt`: a run of its id started after the check
   * that the closed run is the latest (stillClosed) starts after that, and writes its own.
   */
  private async dropArtifacts(tenant: string, jobId: string, settledAt: Date): Promise<number> {
    const keys = (await this.blobs.list(blobKeys.folder(tenant, jobId))).filter(isDerivedArtifact);
    const written = await Promise.all(keys.map((key) => this.blobs.modifiedAt(key)));
    const stale = keys.filter((_, i) => written[i] && written[i] < settledAt);
    await Promise.all(stale.map((key) => this.blobs.delete(key)));
    return stale.length;
  }

  /** Whether the run is still its workflow id's latest: a reset runs it again over the same artifacts. */
  private async stillClosed(workflowId: string, runId: string): Promise<boolean> {
    try {
      return (await this.client.workflow.getHandle(workflowId).describe()).runId === runId;
    } catch (error) {
      // Deleted meanwhile: nothing can run it again.
      if (error instanceof WorkflowNotFoundError) return true;
      throw error;
    }
  }
}
