import fs from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { formatOfFile } from '../lib/backfill/import-sources';
import type { CairnClient } from './client';

export interface IngestTarget {
  label: string;
  submit: (client: CairnClient) => Promise<{ job_id: string }>;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** A URL, a file, or every supported file under a folder. */
export async function ingestTargets(inputs: string[], options: { documentType?: string }): Promise<IngestTarget[]> {
  const targets: IngestTarget[] = [];
  for (const input of inputs) {
    if (/^https?:\/\//i.test(input)) {
      targets.push({ label: input, submit: (client) => client.request('POST', '/v1/urls', { url: input, document_type: options.documentType }) });
      continue;
    }
    const stat = await fs.stat(input).catch(() => undefined);
    if (!stat) throw new Error(`${input}: no such file, folder or http(s) URL`);
    const files = stat.isDirectory()
      ? (await fs.readdir(input, { recursive: true, withFileTypes: true }))
          .filter((entry) => entry.isFile() && formatOfFile(entry.name))
          .map((entry) => path.join(entry.parentPath, entry.name))
          .sort()
      : [input];
    for (const file of files) targets.push({ label: file, submit: (client) => uploadFile(client, file, options.documentType) });
  }
  return targets;
}

async function uploadFile(client: CairnClient, file: string, documentType?: string) {
  const form = new FormData();
  form.set('file', new Blob([await fs.readFile(file)]), path.basename(file));
  const format = formatOfFile(file);
  if (format) form.set('format', format);
  if (documentType) form.set('document_type', documentType);
  return client.request<{ job_id: string }>('POST', '/v1/files', form);
}

export interface IngestOutcome {
  label: string;
  jobId?: string;
  status: string;
  memories?: number;
  error?: string;
}

/** Submits every target, then follows the jobs to the end with one progress bar over all of them. */
export async function runIngest(client: CairnClient, targets: IngestTarget[], options: { wait: boolean; quiet?: boolean }): Promise<IngestOutcome[]> {
  const bar = options.quiet ? undefined : new SingleBar({ format: ' {bar} {value}/{total} {phase} | {label}', hideCursor: true }, Presets.shades_classic);
  bar?.start(targets.length * (options.wait ? 2 : 1), 0, { phase: 'submitting', label: '' });
  const outcomes: IngestOutcome[] = [];
  for (const target of targets) {
    try {
      const { job_id } = await target.submit(client);
      outcomes.push({ label: target.label, jobId: job_id, status: 'queued' });
    } catch (error) {
      // One refused file (too large, unsupported) must not stop the rest of a folder.
      outcomes.push({ label: target.label, status: 'rejected', error: (error as Error).message });
      if (options.wait) bar?.increment();
    }
    bar?.increment({ label: path.basename(target.label) });
  }
  if (options.wait) {
    bar?.update({ phase: 'processing' });
    let open = outcomes.filter((outcome) => outcome.jobId);
    while (open.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const outcome of open) {
        const job = await client.request<{ status: string; memories_created?: number; errors?: { message: string }[] }>('GET', `/v1/jobs/${outcome.jobId}`);
        if (!FINISHED.has(job.status)) continue;
        outcome.status = job.status;
        outcome.memories = job.memories_created;
        outcome.error = job.errors?.[0]?.message;
        bar?.increment({ label: path.basename(outcome.label) });
      }
      open = open.filter((outcome) => !FINISHED.has(outcome.status));
    }
  }
  bar?.stop();
  return outcomes;
}
