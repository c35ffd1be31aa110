import { openAsBlob } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar, Presets } from 'cli-progress';
import { formatOfFile } from '../lib/backfill/import-sources';
import { ApiError, type CairnClient } from './client';

export interface IngestTarget {
  label: string;
  submit: (client: CairnClient) => Promise<{ job_id: string }>;
}

/** Uploads (and, waiting, job polls) in flight at once: a large folder neither crawls nor floods the API. */
const IN_FLIGHT = 4;
const POLL_INTERVAL_MS = 500;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);
/** Unreachable (0), or the key refused. */
const REFUSES_EVERY_FILE = new Set([0, 401, 403]);

/** What to send, and the files of folders left out because Cairn reads no such format. */
export async function ingestTargets(inputs: string[], options: { documentType?: string }): Promise<{ targets: IngestTarget[]; skipped: string[] }> {
  const targets: IngestTarget[] = [];
  const skipped: string[] = [];
  for (const input of inputs) {
    if (/^https?:\/\//i.test(input)) {
      targets.push({ label: input, submit: (client) => client.request('POST', '/v1/urls', { url: input, document_type: options.documentType }) });
      continue;
    }
    const stat = await fs.stat(input).catch(() => undefined);
    if (!stat) throw new Error(`${input}: no such file, folder or http(s) URL`);
    const files = stat.isDirectory() ? await filesUnder(input) : [input];
    for (const file of files) {
      if (stat.isDirectory() && !formatOfFile(file)) skipped.push(file);
      else targets.push({ label: file, submit: (client) => uploadFile(client, file, options.documentType) });
    }
  }
  return { targets, skipped };
}

/** Every file under a folder, a link to a file included. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await fs.readdir(folder, { recursive: true, withFileTypes: true });
  const files = await Promise.all(
    entries.map(async (entry) => {
      const file = path.join(entry.parentPath, entry.name);
      if (entry.isFile()) return file;
      return entry.isSymbolicLink() && (await fs.stat(file).catch(() => undefined))?.isFile() ? file : undefined;
    }),
  );
  return files.filter((file): file is string => file !== undefined).sort();
}

async function uploadFile(client: CairnClient, file: string, documentType?: string) {
  const form = new FormData();
  // Read from disk as it is sent, not held whole in memory.
  form.set('file', await openAsBlob(file), path.basename(file));
  const format = formatOfFile(file);
  if (format) form.set('format', format);
  if (documentType) form.set('document_type', documentType);
  return client.request<{ job_id: string }>('POST', '/v1/files', form);
}

export interface IngestOutcome {
  label: string;
  jobId?: string;
  /** A job's status; else `rejected`, `not sent`, or `interrupted` (being sent: it may have been accepted). */
  status: string;
  memories?: number;
  error?: string;
}

export const succeeded = (outcome: IngestOutcome, waited: boolean) => outcome.status === (waited ? 'completed' : 'queued');

/**
 * Submits every target, a few at a time, then follows the jobs to their end, with one progress bar
 * over all of it. Interrupted (`signal`), or unable to follow any longer, it answers what it knows
 * by then: the jobs accepted are never left unnamed.
 */
export async function runIngest(client: CairnClient, targets: IngestTarget[], options: { wait: boolean; quiet?: boolean; signal: AbortSignal }): Promise<IngestOutcome[]> {
  const bar = options.quiet ? undefined : new SingleBar({ format: ' {bar} {value}/{total} {phase} | {label}', hideCursor: true }, Presets.shades_classic);
  bar?.start(targets.length * (options.wait ? 2 : 1), 0, { phase: 'submitting', label: '' });
  const outcomes: IngestOutcome[] = targets.map((target) => ({ label: target.label, status: 'not sent' }));
  try {
    await inTurns(outcomes, options.signal, async (outcome, i) => {
      try {
        outcome.status = 'interrupted';
        outcome.jobId = (await targets[i]!.submit(client)).job_id;
        outcome.status = 'queued';
      } catch (error) {
        if (options.signal.aborted) return;
        // One refused file (too large, unsupported) must not stop the rest of a folder; an API out of
        // reach, or a key it refuses, would refuse every one of them alike.
        Object.assign(outcome, { status: 'rejected', error: (error as Error).message });
        if (error instanceof ApiError && REFUSES_EVERY_FILE.has(error.status)) throw error;
        if (options.wait) bar?.increment();
      }
      bar?.increment({ label: path.basename(outcome.label) });
    }).catch((error: Error) => {
      if (!outcomes.some((outcome) => outcome.jobId)) throw error;
      for (const outcome of outcomes.filter((outcome) => outcome.status === 'not sent')) outcome.error = error.message;
    });
    if (options.wait) {
      bar?.update({ phase: 'processing' });
      await follow(client, outcomes.filter((outcome) => outcome.jobId), options.signal, () => bar?.increment());
    }
  } finally {
    bar?.stop();
  }
  return outcomes;
}

async function follow(client: CairnClient, accepted: IngestOutcome[], signal: AbortSignal, ended: () => void): Promise<void> {
  let open = accepted;
  while (open.length > 0 && !signal.aborted) {
    try {
      await sleep(POLL_INTERVAL_MS, undefined, { signal });
      await inTurns(open, signal, async (outcome) => {
        const job = await client.request<{ status: string; memories_created?: number; errors?: { message: string }[] }>('GET', `/v1/jobs/${outcome.jobId}`);
        outcome.status = job.status;
        if (!FINISHED.has(job.status)) return;
        outcome.memories = job.memories_created;
        outcome.error = job.errors?.[0]?.message;
        ended();
      });
    } catch (error) {
      if (signal.aborted) return;
      const reason = error instanceof ApiError ? error.message : String(error);
      for (const outcome of open.filter((outcome) => !FINISHED.has(outcome.status))) outcome.error = `not followed to its end: ${reason}`;
      return;
    }
    open = open.filter((outcome) => !FINISHED.has(outcome.status));
  }
}

/**
 * Runs `work` over the items, IN_FLIGHT at a time; once the signal is aborted it answers at once, and
 * once one item failed it takes no new one, lets those under way end, then throws that failure.
 */
async function inTurns<T>(items: T[], signal: AbortSignal, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < items.length && !signal.aborted && !failed) {
      const index = next++;
      await work(items[index]!, index).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  let onAbort!: () => void;
  const aborted = new Promise<void>((resolve) => (onAbort = resolve));
  signal.addEventListener('abort', onAbort, { once: true });
  const lanes = Promise.allSettled(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, lane)).then((settled) => {
    const failure = settled.find((lane) => lane.status === 'rejected');
    if (failure) throw failure.reason;
  });
  try {
    await Promise.race([lanes, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
