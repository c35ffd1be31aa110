/**
 * The acceptance journal's writer thread (lib/accept-journal.ts), as the source it is started from.
 * It is plain JavaScript run with `eval`: the same text works under tsx, ts-jest and the compiled
 * build, none of which would agree on how to load a TypeScript file as a thread.
 *
 * Why a thread of its own: the writes and flushes here are what an acceptance waits for, and on the
 * libuv pool they queue behind every other file operation of the process (the blob writes and
 * flushes completing earlier jobs in the background), whose flushes can take hundreds of ms on a
 * busy disk. Here they wait only for each other.
 *
 * Messages in: {type: 'write', id, data, durable} — appended to the current segment; after each
 * batch, one fdatasync covers every durable write in it (a group commit). {type: 'erase', segment}
 * overwrites with zeros what the current segment holds, once the main thread has released every entry
 * (in order with the writes: those sent after it go to the wiped segment's start). {type: 'retire',
 * segment} deletes a segment the main thread no longer needs. {type: 'close'}.
 * Messages out: {type: 'written', ids, segments (where each went), current} or {type: 'failed', ids, error}, and {type: 'closed'}.
 *
 * Segments are preallocated with zeros and flushed before they are written to, so an append
 * overwrites blocks the file system has already allocated: its fdatasync flushes data alone, never
 * waiting on the file system's journal commit, which a new file's flush does (p99 5 ms against 15,
 * max 20 against 61, measured beside the pipeline). The next segment is prepared a slice at a time
 * while no write is waiting.
 */
export const JOURNAL_WRITER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');

const { dir, segmentBytes, firstSegment } = workerData;
const SLICE = 1 << 20;
const zeros = Buffer.alloc(SLICE);
const fileOf = (segment) => path.join(dir, 'segment-' + String(segment).padStart(12, '0') + '.log');

// Nothing is written before the first segment is prepared: nextSegment() below makes it the current one.
let current = { segment: firstSegment - 1, fd: -1, offset: 0 };
let spare = { segment: firstSegment, fd: -1, filled: 0, flushed: false };
let queue = [];
let scheduled = false;
let broken;

function flushFolder() {
  const folder = fs.openSync(dir, 'r');
  try { fs.fsyncSync(folder); } finally { fs.closeSync(folder); }
}

function fillSpare(all) {
  if (spare.fd < 0) spare.fd = fs.openSync(fileOf(spare.segment), 'w+');
  while (spare.filled < segmentBytes) {
    const length = Math.min(SLICE, segmentBytes - spare.filled);
    fs.writeSync(spare.fd, zeros, 0, length, spare.filled);
    spare.filled += length;
    if (!all) return;
  }
  if (!spare.flushed) {
    fs.fsyncSync(spare.fd);
    flushFolder();
    spare.flushed = true;
  }
}

// A segment that could not be filled (the disk full) holds no record: it goes, not to keep the space it took.
function dropSpare() {
  if (spare.fd >= 0) fs.closeSync(spare.fd);
  fs.rmSync(fileOf(spare.segment), { force: true });
  spare = { segment: spare.segment, fd: -1, filled: 0, flushed: false };
}

function nextSegment() {
  fillSpare(true);
  if (current.fd >= 0) {
    fs.fdatasyncSync(current.fd);
    fs.closeSync(current.fd);
  }
  current = { segment: spare.segment, fd: spare.fd, offset: 0 };
  spare = { segment: spare.segment + 1, fd: -1, filled: 0, flushed: false };
}

function erase() {
  for (let at = 0; at < current.offset; at += SLICE) fs.writeSync(current.fd, zeros, 0, Math.min(SLICE, current.offset - at), at);
  fs.fdatasyncSync(current.fd);
  current.offset = 0;
}

function drain() {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (batch.length > 0) {
    const ids = batch.flatMap((message) => (message.type === 'write' ? [message.id] : []));
    if (broken) {
      parentPort.postMessage({ type: 'failed', ids, error: broken });
    } else {
      try {
        const segments = [];
        for (const message of batch) {
          if (message.type === 'erase') {
            if (message.segment === current.segment && current.fd >= 0) erase();
            continue;
          }
          if (current.fd < 0 || current.offset + message.data.length > segmentBytes) nextSegment();
          fs.writeSync(current.fd, message.data, 0, message.data.length, current.offset);
          current.offset += message.data.length;
          segments.push(current.segment);
        }
        if (batch.some((message) => message.durable)) fs.fdatasyncSync(current.fd);
        if (ids.length > 0) parentPort.postMessage({ type: 'written', ids, segments, current: current.segment });
      } catch (error) {
        // After a failed write or flush nothing later can be trusted to be on disk (a flush after a
        // failed one may report success for data that was dropped): the journal stops taking writes.
        broken = String((error && error.message) || error);
        dropSpare();
        parentPort.postMessage({ type: 'failed', ids, error: broken });
      }
    }
  }
  if (queue.length > 0) schedule();
  else if (!broken && !spare.flushed) {
    try {
      fillSpare(false);
      if (!spare.flushed) schedule();
    } catch (error) {
      broken = String((error && error.message) || error);
      dropSpare();
    }
  }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

parentPort.on('message', (message) => {
  if (message.type === 'write' || message.type === 'erase') {
    queue.push(message);
    schedule();
  } else if (message.type === 'retire') {
    fs.rmSync(fileOf(message.segment), { force: true });
  } else if (message.type === 'close') {
    drain();
    for (const fd of [current.fd, spare.fd]) {
      if (fd < 0) continue;
      try { fs.fdatasyncSync(fd); } catch {}
      fs.closeSync(fd);
    }
    // A spare never written to holds nothing: the next process starts its own.
    fs.rmSync(fileOf(spare.segment), { force: true });
    parentPort.postMessage({ type: 'closed' });
  }
});

try {
  nextSegment();
  parentPort.postMessage({ type: 'ready', segment: current.segment });
  schedule();
} catch (error) {
  broken = String((error && error.message) || error);
  dropSpare();
  parentPort.postMessage({ type: 'failed', ids: [], error: broken });
}
`;
