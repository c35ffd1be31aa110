import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { IngestWorkflowInput } from '../workflows/ingest';
import type { AcceptJournal } from './accept-journal';
import { getJson, putJson, type BlobStore } from './blob/store';

/**
 * A fresh job answered 2xx before Temporal acknowledged its start (IngestJobs.start): everything it
 * takes to start it again, on stable storage until the start is acknowledged. A process that stops
 * in between leaves the record, and the next sweep (StartSweep, start-sweep.ts) starts the job.
 */
export interface PendingStart {
  workflowInput: IngestWorkflowInput;
  recordedAt: string;
  /** A journaled job's upload, not yet known to be in the blob store (AcceptJournal). */
  content?: Buffer;
}

/** Outside every tenant's `<tenant>/jobs/…` folder; fresh job ids are random UUIDs, unique across tenants. */
const FOLDER = '_cairn/pending-starts';
const JOB_ID = /^[0-9a-f-]{36}$/;

/**
 * The jobs answered 2xx whose start is not yet acknowledged: those in this process's acceptance
 * journal, and those recorded in the blob store (by any API process sharing it).
 */
export class PendingStarts {
  constructor(
    private readonly blobs: BlobStore,
    private readonly journal?: AcceptJournal,
  ) {}

  /** Flushed to stable storage when this resolves. */
  record(workflowInput: IngestWorkflowInput): Promise<void> {
    return putJson(this.blobs, keyOf(workflowInput.jobId), { workflowInput, recordedAt: new Date().toISOString() } satisfies PendingStart);
  }

  /**
   * The record of a job still being started, if any (an id no fresh job could have is simply not
   * found); a record that is there but cannot be read is an error.
   */
  async read(jobId: string): Promise<PendingStart | undefined> {
    const journaled = this.journal?.get(jobId);
    if (journaled) return journaled;
    if (!JOB_ID.test(jobId)) return undefined;
    try {
      return await getJson<PendingStart>(this.blobs, keyOf(jobId));
    } catch (error) {
      if (!(await this.blobs.exists(keyOf(jobId)))) return undefined;
      throw error;
    }
  }

  /**
   * Once a recorded job's start settles: started, or found started already (by a sweep, or by a start
   * whose record outlived it), the record goes — after its own write has settled, when it is still
   * being written; any other failure leaves it for the next sweep and is thrown. Answers whether this
   * start was the one that started the job.
   */
  async settle(jobId: string, start: Promise<unknown>, recorded?: Promise<void>): Promise<boolean> {
    const started = await start.then(
      () => true,
      (error) => {
        if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
        throw error;
      },
    );
    await recorded?.catch(() => undefined);
    await this.remove(jobId);
    return started;
  }

  async remove(jobId: string): Promise<void> {
    if (this.journal?.get(jobId)) this.journal.release(jobId);
    else await this.blobs.delete(keyOf(jobId));
  }

  /**
   * The records of a tenant's jobs still being started (for listings), newest first; one that cannot
   * be read is left to the sweep, which logs it.
   */
  async ofTenant(tenant: string): Promise<PendingStart[]> {
    const records = await Promise.all((await this.jobIds()).map((jobId) => this.read(jobId).catch(() => undefined)));
    return records
      .filter((record): record is PendingStart => record?.workflowInput.request.tenant === tenant)
      .sort((a, b) => b.workflowInput.createdAt.localeCompare(a.workflowInput.createdAt));
  }

  async jobIds(): Promise<string[]> {
    const recorded = (await this.blobs.list(FOLDER)).map((key) => key.slice(FOLDER.length + 1).replace(/\.json$/, '')).filter((jobId) => JOB_ID.test(jobId));
    return [...(this.journal?.list() ?? []).map((start) => start.workflowInput.jobId), ...recorded];
  }
}

const keyOf = (jobId: string) => `${FOLDER}/${jobId}.json`;
