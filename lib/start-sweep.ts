import type { WorkflowHandle } from '@temporalio/client';
import type { IngestWorkflowInput } from '../workflows/ingest';
import type { BlobStore } from './blob/store';
import { ingestWorkflowId } from './ids';
import type { Logger } from './logger';
import type { PendingStarts } from './pending-starts';

/** A recorded start that failed is tried again after this, doubling with each failure up to the cap. */
const FAILED_START_BACKOFF_MS = 10_000;
const FAILED_START_BACKOFF_CAP_MS = 2 * 60_000;

export interface StartSweepDeps {
  pending: PendingStarts;
  blobs: BlobStore;
  /** Whether this process is still completing the start of the workflow with this id. */
  startingHere(workflowId: string): boolean;
  /** Starts the job's workflow, refusing a second run of its id. */
  start(workflowInput: IngestWorkflowInput): Promise<WorkflowHandle>;
  log?: Logger;
}

/**
 * Starts the jobs answered 2xx whose start was recorded (IngestJobs.startInBackground) or journaled
 * (IngestJobs.startJournaled) but never acknowledged: those of a process that stopped first, or whose
 * start failed. Any number of API processes may sweep the same store, since a second start of a job
 * is refused.
 */
export class StartSweep {
  /**
   * Recorded starts whose last attempt by this sweep failed (unreadable, or refused): tried again once
   * `nextAt` has passed, with a backoff that doubles, never dropped (each was answered 2xx).
   */
  private readonly failing = new Map<string, { attempts: number; nextAt: number }>();

  constructor(private readonly deps: StartSweepDeps) {}

  /** Recorded starts whose last attempt failed and that wait for their next one. */
  get failingCount(): number {
    return this.failing.size;
  }

  /**
   * Starts the recorded jobs recorded at least `olderThanMs` ago and not still under way in this
   * process (a journaled job's upload written first). One job's record that cannot be read or started
   * is logged and holds back no other; it is tried again after 10 s, then 20 s, 40 s… up to 2 min
   * between attempts (after an outage of Temporal, its records start within 2 min of its return).
   * Returns how many jobs it started.
   */
  async run(olderThanMs: number, now: number): Promise<number> {
    const { pending, blobs, log } = this.deps;
    let resumed = 0;
    const jobIds = await pending.jobIds();
    const recorded = new Set(jobIds);
    for (const jobId of this.failing.keys()) if (!recorded.has(jobId)) this.failing.delete(jobId);
    for (const jobId of jobIds) {
      const failing = this.failing.get(jobId);
      // A second of slack: sweeps come every 10 s, so a retry due then is not put off to the next one.
      if (failing && failing.nextAt > now + 1_000) continue;
      try {
        const record = await pending.read(jobId);
        if (!record || now - Date.parse(record.recordedAt) < olderThanMs) continue;
        const { workflowInput } = record;
        if (this.deps.startingHere(ingestWorkflowId(workflowInput.request.tenant, jobId))) {
          this.failing.delete(jobId);
          continue;
        }
        // A journaled job's upload may not have reached the blob store (or its flush, a power cut).
        if (record.content && workflowInput.request.blobKey) await blobs.put(workflowInput.request.blobKey, record.content);
        if (await pending.settle(jobId, this.deps.start(workflowInput))) resumed += 1;
        this.failing.delete(jobId);
      } catch (error) {
        const attempts = (failing?.attempts ?? 0) + 1;
        const backoffMs = Math.min(FAILED_START_BACKOFF_MS * 2 ** (attempts - 1), FAILED_START_BACKOFF_CAP_MS);
        this.failing.set(jobId, { attempts, nextAt: now + backoffMs });
        log?.error({ err: error, job_id: jobId, attempts, retry_in_s: backoffMs / 1000 }, 'could not start an accepted job from its record; a later sweep tries again');
      }
    }
    return resumed;
  }
}
