import fs from 'node:fs/promises';
import path from 'node:path';
import { syncFolder } from '../lib/blob/store';
import { quantile } from './stats';

/** What a durable write cost on the disk during a window: quantiles in ms of each kind of probe. */
export interface DiskProbeResult {
  probes: number;
  /** An overwrite of 4 KiB inside a file allocated beforehand, then fdatasync: the device's flush alone. */
  flush_p50_ms: number;
  flush_p99_ms: number;
  flush_max_ms: number;
  /**
   * A new 4 KiB file in a new folder, renamed into place, then it and its folders flushed, as the blob
   * store writes a fresh job's upload (lib/blob/store.ts): the flush plus the file system's metadata work.
   */
  create_p50_ms: number;
  create_p99_ms: number;
  create_max_ms: number;
}

const FILE_BYTES = 8 << 20;
const PAYLOAD = Buffer.alloc(4096, 0x61);

/**
 * Probes the disk under `dir` while a load runs (one probe of each kind, then `everyMs` of rest: a
 * light load of its own), so that a latency tail can be placed: an answer given only once the
 * request is on stable storage is no faster than the disk's flush.
 * Answers a function that stops the probe and reports; the probe's files are removed.
 */
export async function startDiskProbe(dir: string, everyMs = 100): Promise<() => Promise<DiskProbeResult>> {
  const root = await fs.mkdtemp(path.join(dir, 'disk-probe-'));
  const file = await fs.open(path.join(root, 'allocated'), 'w+');
  // Written (not only reserved) and flushed first, so an overwrite changes no metadata.
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 0; at < FILE_BYTES; at += zeros.length) await file.write(zeros, 0, zeros.length, at);
  await file.sync();
  const flushes: number[] = [];
  const creates: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      let started = performance.now();
      await file.write(PAYLOAD, 0, PAYLOAD.length, (n * PAYLOAD.length) % FILE_BYTES);
      await file.datasync();
      flushes.push(performance.now() - started);

      started = performance.now();
      const folder = path.join(root, 'blobs', String(n));
      await fs.mkdir(folder, { recursive: true });
      const temp = path.join(folder, 'blob.tmp');
      const handle = await fs.open(temp, 'w');
      try {
        await handle.write(PAYLOAD);
        await fs.rename(temp, path.join(folder, 'blob'));
        await Promise.all([handle.sync(), syncFolder(folder), syncFolder(path.dirname(folder))]);
      } finally {
        await handle.close();
      }
      creates.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return async () => {
    running = false;
    await loop.finally(async () => {
      await file.close();
      await fs.rm(root, { recursive: true, force: true });
    });
    flushes.sort((a, b) => a - b);
    creates.sort((a, b) => a - b);
    return {
      probes: flushes.length,
      flush_p50_ms: quantile(flushes, 0.5),
      flush_p99_ms: quantile(flushes, 0.99),
      flush_max_ms: quantile(flushes, 1),
      create_p50_ms: quantile(creates, 0.5),
      create_p99_ms: quantile(creates, 0.99),
      create_max_ms: quantile(creates, 1),
    };
  };
}
