import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { JOURNAL_WRITER_SOURCE } from './accept-journal-writer';
import type { Logger } from './logger';

/** A fresh job answered 2xx from the journal: what it takes to write its upload and start it again. */
export interface JournaledStart {
  workflowInput: IngestWorkflowInput;
  recordedAt: string;
  /** The upload, when the job was sent content (a URL job has none): its blob is written from this. */
  content?: Buffer;
}

/** Uploads up to this size are journaled; a larger one is written to the blob store on the way in. */
export const JOURNAL_MAX_CONTENT_BYTES = 1 << 20;
const SEGMENT_BYTES = 8 << 20;
const MAGIC = 0x4341524e;
const HEADER_BYTES = 12;
/** How long every entry must have been released, and no new one be on its way, before the segment being written is wiped. */
const ERASE_AFTER_MS = 1_000;
/** A journal's lock not refreshed for this long belongs to a process that is gone. */
const LOCK_STALE_MS = 60_000;
const LOCK_REFRESH_MS = 15_000;
const SEGMENT_FILE = /^segment-(\d{12})\.log$/;

type JournalRecord = { kind: 'accepted'; workflowInput: IngestWorkflowInput; recordedAt: string; contentBytes: number } | { kind: 'released'; jobId: string };

export class JournalInUseError extends Error {}

/**
 * The API's acceptance journal: a fresh job is answered 2xx once its start — request, workflow input
 * and upload — is appended here and flushed, instead of once its upload is written and flushed as a
 * file and Temporal has acknowledged its start. Both then happen in the background, and the entry
 * is released once they have (IngestJobs.start). After a crash, the entries left are read back when
 * the journal is opened, and the API's sweep writes their uploads and starts them
 * (IngestJobs.resumePendingStarts).
 *
 * Why: on a 2-core machine beside Elasticsearch and the pipeline, each new file's flush waits for the
 * file system's journal, and Temporal's dev server queues every start behind one SQLite connection;
 * together they put acceptance p99 at 60–150 ms. One append and one flush of preallocated blocks,
 * shared by every acceptance in flight (a group commit on a thread of its own, see
 * accept-journal-writer.ts), is what an acceptance waits for here.
 *
 * The journal is this process's own, on its local disk: a second process is refused the folder
 * (JournalInUseError) while the first holds its lock. Segments are deleted oldest first once every
 * entry in them is released, so a release, which is not flushed on its own, is never lost while the
 * entry it releases is still on disk; one lost in a crash makes the sweep try a start that Temporal
 * refuses as a duplicate, which is harmless.
 */
export class AcceptJournal {
  private readonly entries = new Map<string, { start: JournaledStart; segment: number }>();
  /** Segments on disk, oldest first, with how many of their entries are not released. */
  private readonly segments = new Map<number, number>();
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void; placed?: (segment: number) => void; durable: boolean }>();
  private eraseTimer?: NodeJS.Timeout;
  private current = 0;
  private nextWrite = 0;
  private failure?: string;
  private readonly lockRefresh: NodeJS.Timeout;

  private constructor(
    private readonly dir: string,
    private readonly writer: Worker,
    private readonly log?: Logger,
  ) {
    writer.on('message', (message) => this.onWriterMessage(message));
    writer.on('error', (error) => this.fail(`the journal's writer stopped: ${error.message}`));
    this.lockRefresh = setInterval(() => {
      const now = new Date();
      fs.promises.utimes(lockFile(dir), now, now).catch(() => undefined);
    }, LOCK_REFRESH_MS).unref();
  }

  /** Opens the journal in `dir` (created if need be), reading back the entries a stopped process left. */
  static async open(dir: string, log?: Logger): Promise<AcceptJournal> {
    fs.mkdirSync(dir, { recursive: true });
    await takeLock(dir, log);
    const existing = fs
      .readdirSync(dir)
      .map((name) => SEGMENT_FILE.exec(name)?.[1])
      .filter((digits): digits is string => digits !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const firstSegment = (existing.at(-1) ?? 0) + 1;
    const writer = new Worker(JOURNAL_WRITER_SOURCE, { eval: true, workerData: { dir, segmentBytes: SEGMENT_BYTES, firstSegment } });
    const journal = new AcceptJournal(dir, writer, log);
    for (const segment of existing) journal.recover(segment);
    // A writer that cannot prepare its segment (the disk full or read-only) leaves the journal failed
    // (onWriterMessage): the process accepts without it, as after a failed write, rather than not
    // starting at all, and the entries read back are still started by its sweep.
    await new Promise<void>((resolve, reject) => {
      writer.once('message', () => resolve());
      writer.once('error', reject);
    });
    journal.current = firstSegment;
    journal.segments.set(firstSegment, 0);
    journal.retireReleased();
    if (journal.entries.size > 0) log?.info({ entries: journal.entries.size, dir }, 'accepted jobs read back from the acceptance journal; the sweep starts them');
    return journal;
  }

  /** False once a write or flush failed: nothing more is appended, and acceptance goes the way it would without a journal. */
  get usable(): boolean {
    return this.failure === undefined;
  }

  /** Resolves once the entry is on stable storage. */
  append(start: JournaledStart): Promise<void> {
    const { workflowInput, recordedAt, content } = start;
    const record: JournalRecord = { kind: 'accepted', workflowInput, recordedAt, contentBytes: content?.byteLength ?? 0 };
    // Counted in its segment as soon as it is placed, before any segment is retired.
    return this.write(encode(record, content), true, (segment) => {
      this.entries.set(workflowInput.jobId, { start, segment });
      this.segments.set(segment, (this.segments.get(segment) ?? 0) + 1);
    });
  }

  /** The job's start is acknowledged and its upload flushed: its entry is no longer needed. */
  release(jobId: string): void {
    const entry = this.entries.get(jobId);
    if (!entry) return;
    this.entries.delete(jobId);
    this.segments.set(entry.segment, (this.segments.get(entry.segment) ?? 1) - 1);
    if (this.usable) this.write(encode({ kind: 'released', jobId }), false).catch(() => undefined);
    this.retireReleased();
    if (this.entries.size === 0) this.scheduleErase();
  }

  get(jobId: string): JournaledStart | undefined {
    return this.entries.get(jobId)?.start;
  }

  list(): JournaledStart[] {
    return [...this.entries.values()].map((entry) => entry.start);
  }

  async close(): Promise<void> {
    clearInterval(this.lockRefresh);
    clearTimeout(this.eraseTimer);
    // Its 'closed', not whatever it says first: a 'written' for an earlier batch may still be on the
    // way, and ending the thread on that would drop the writes queued behind it (releases among them).
    const closed = new Promise<void>((resolve) => {
      const onMessage = (message: { type: string }) => {
        if (message.type !== 'closed') return;
        this.writer.off('message', onMessage);
        resolve();
      };
      this.writer.on('message', onMessage);
    });
    this.writer.postMessage({ type: 'close' });
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    await this.writer.terminate();
    fs.rmSync(lockFile(this.dir), { force: true });
  }

  /** `placed` is told the segment the record went to, once it is written. */
  private write(data: Buffer, durable: boolean, placed?: (segment: number) => void): Promise<void> {
    if (this.failure) return Promise.reject(new Error(this.failure));
    const id = this.nextWrite++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, placed, durable });
      this.writer.postMessage({ type: 'write', id, data, durable });
    });
  }

  private onWriterMessage(message: { type: string; ids?: number[]; segments?: number[]; current?: number; error?: string }): void {
    if (message.type === 'written') {
      const ids = message.ids ?? [];
      ids.forEach((id, at) => {
        const waiter = this.settle(id);
        waiter?.placed?.(message.segments![at]!);
        waiter?.resolve();
      });
      if (message.current !== undefined && message.current !== this.current) {
        this.current = message.current;
        this.segments.set(message.current, this.segments.get(message.current) ?? 0);
        this.retireReleased();
      }
    } else if (message.type === 'failed') {
      this.fail(message.error ?? 'the journal could not be written');
      for (const id of message.ids ?? []) this.settle(id)?.reject(new Error(`the acceptance journal could not be written: ${message.error}`));
    }
  }

  private settle(id: number) {
    const waiter = this.waiting.get(id);
    this.waiting.delete(id);
    return waiter;
  }

  private fail(reason: string): void {
    if (this.failure) return;
    this.failure = reason;
    this.log?.error({ dir: this.dir, reason }, 'the acceptance journal failed; jobs are accepted without it from now on');
    for (const [id, waiter] of this.waiting) {
      this.waiting.delete(id);
      waiter.reject(new Error(`the acceptance journal could not be written: ${reason}`));
    }
  }

  /**
   * Released entries keep their uploads on disk until their segment goes: the segment being written
   * would hold them until it fills (8 MB of later acceptances, days on a quiet service), after the
   * source they were sent as is deleted. Once every entry is released (the older segments are then
   * deleted) and none is on its way, the writer wipes it. Not for a release alone: a release written
   * there may be all that keeps an older segment's entry from being started again after a crash.
   */
  private scheduleErase(): void {
    if (this.eraseTimer) return;
    this.eraseTimer = setTimeout(() => {
      this.eraseTimer = undefined;
      const arriving = [...this.waiting.values()].some((waiter) => waiter.durable);
      if (this.entries.size === 0 && !arriving && this.usable) this.writer.postMessage({ type: 'erase', segment: this.current });
    }, ERASE_AFTER_MS).unref();
  }

  /** Deletes the oldest segments while every entry in them is released (never the one being written). */
  private retireReleased(): void {
    for (const [segment, open] of this.segments) {
      if (segment === this.current || open > 0) return;
      this.segments.delete(segment);
      this.writer.postMessage({ type: 'retire', segment });
    }
  }

  /** Reads a segment a stopped process left, up to its first record not wholly written. */
  private recover(segment: number): void {
    this.segments.set(segment, 0);
    for (const { record, content } of decode(fs.readFileSync(path.join(this.dir, segmentName(segment))))) {
      if (record.kind === 'accepted') {
        const start: JournaledStart = { workflowInput: record.workflowInput, recordedAt: record.recordedAt, content: record.contentBytes > 0 ? content : undefined };
        this.entries.set(record.workflowInput.jobId, { start, segment });
        this.segments.set(segment, (this.segments.get(segment) ?? 0) + 1);
      } else {
        const entry = this.entries.get(record.jobId);
        if (!entry) continue;
        this.entries.delete(record.jobId);
        this.segments.set(entry.segment, (this.segments.get(entry.segment) ?? 1) - 1);
      }
    }
  }
}

const segmentName = (segment: number) => `segment-${String(segment).padStart(12, '0')}.log`;
const lockFile = (dir: string) => path.join(dir, 'lock');

/**
 * Takes the journal's folder for this process: refused while another live process holds it. A lock
 * from another host (a container recreated after a crash has a new hostname) is taken once it has
 * not been refreshed for LOCK_STALE_MS, which is waited for here: a cleanly stopped process removes
 * its lock, so only a crash makes the next one wait.
 */
async function takeLock(dir: string, log?: Logger): Promise<void> {
  const file = lockFile(dir);
  const holder = `${JSON.stringify({ pid: process.pid, host: os.hostname() })}\n`;
  try {
    fs.writeFileSync(file, holder, { flag: 'wx' });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  let held: { pid?: number; host?: string } = {};
  try {
    held = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof held;
  } catch {
    // A lock cut short by a crash holds nothing.
  }
  const inUse = new JournalInUseError(`the acceptance journal in ${dir} is in use by process ${held.pid} on ${held.host}`);
  if (held.host === os.hostname()) {
    if (held.pid !== undefined && held.pid !== process.pid && processAlive(held.pid)) throw inUse;
  } else if (held.host !== undefined) {
    const refreshedAt = () => fs.statSync(file).mtimeMs;
    if (Date.now() - refreshedAt() < LOCK_STALE_MS) log?.warn({ dir, holder: held }, 'the acceptance journal is locked by a process on another host; waiting to see whether it is still alive');
    const giveUpAt = Date.now() + LOCK_STALE_MS + LOCK_REFRESH_MS;
    while (Date.now() - refreshedAt() < LOCK_STALE_MS) {
      if (Date.now() > giveUpAt) throw inUse;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  fs.writeFileSync(file, holder);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A record: magic, body length, the body's CRC-32, then the body — its JSON's length, the JSON, the
 * upload's bytes — written into one buffer (the upload copied once), the CRC over the body in place.
 */
function encode(record: JournalRecord, content?: Uint8Array): Buffer {
  const json = JSON.stringify(record);
  const jsonLength = Buffer.byteLength(json);
  const length = 4 + jsonLength + (content?.byteLength ?? 0);
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(length, 4);
  out.writeUInt32LE(jsonLength, HEADER_BYTES);
  out.write(json, HEADER_BYTES + 4, 'utf8');
  if (content) out.set(content, HEADER_BYTES + 4 + jsonLength);
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)), 8);
  return out;
}

/** The whole records of a segment, in order; reading stops at preallocated zeros or a torn write. */
function* decode(file: Buffer): Generator<{ record: JournalRecord; content: Buffer }> {
  for (let offset = 0; offset + HEADER_BYTES <= file.length; ) {
    if (file.readUInt32LE(offset) !== MAGIC) return;
    const length = file.readUInt32LE(offset + 4);
    const bodyAt = offset + HEADER_BYTES;
    if (length < 4 || bodyAt + length > file.length) return;
    const body = file.subarray(bodyAt, bodyAt + length);
    if (crc32(body) !== file.readUInt32LE(offset + 8)) return;
    const jsonLength = body.readUInt32LE(0);
    if (4 + jsonLength > length) return;
    const record = JSON.parse(body.subarray(4, 4 + jsonLength).toString('utf8')) as JournalRecord;
    yield { record, content: Buffer.from(body.subarray(4 + jsonLength)) };
    offset = bodyAt + length;
  }
}
