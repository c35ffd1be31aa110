import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Embedder } from './embedder';
import { LOCAL_MODEL, installLocalModel } from './install';

/**
 * all-MiniLM-L6-v2 in-process through onnxruntime-node, on a worker thread: inference is CPU-heavy and
 * must not stall the event loop that serves HTTP and Temporal heartbeats. The thread's code is plain
 * JavaScript evaluated by Node itself, so it loads the native addon in the main realm even when the
 * caller runs inside Jest's sandbox (whose typed arrays would fail onnxruntime's instanceof checks).
 * Output: mean-pooled, L2-normalised 384-d vectors, as sentence-transformers computes them.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const ort = require(workerData.ortPath);
const { Tokenizer } = require(workerData.tokenizersPath);

const ready = (async () => {
  const json = (f) => JSON.parse(fs.readFileSync(path.join(workerData.modelDir, f), 'utf8'));
  const tokenizer = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
  const session = await ort.InferenceSession.create(path.join(workerData.modelDir, 'onnx', 'model.onnx'), {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: workerData.threads,
    interOpNumThreads: 1,
    // Spinning threads would burn the cores Elasticsearch and Temporal share with us.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  return { tokenizer, session, sep: tokenizer.token_to_id('[SEP]') };
})();

async function embedBatch(texts) {
  const { tokenizer, session, sep } = await ready;
  const max = workerData.maxTokens;
  const encoded = texts.map((text) => {
    const ids = tokenizer.encode(text).ids;
    return ids.length <= max ? ids : [...ids.slice(0, max - 1), sep];
  });
  const B = encoded.length;
  const S = Math.max(...encoded.map((ids) => ids.length));
  const ids = new BigInt64Array(B * S);
  const mask = new BigInt64Array(B * S);
  encoded.forEach((row, b) => row.forEach((id, j) => { ids[b * S + j] = BigInt(id); mask[b * S + j] = 1n; }));
  const dims = [B, S];
  const result = await session.run({
    input_ids: new ort.Tensor('int64', ids, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * S), dims),
  });
  const hidden = result.last_hidden_state.data;
  const D = workerData.dims;
  return encoded.map((row, b) => {
    const v = new Float64Array(D);
    for (let j = 0; j < row.length; j++) {
      const base = (b * S + j) * D;
      for (let d = 0; d < D; d++) v[d] += hidden[base + d];
    }
    let norm = 0;
    for (let d = 0; d < D; d++) norm += v[d] * v[d];
    norm = Math.sqrt(norm) || 1;
    return Array.from(v, (x) => x / norm);
  });
}

// Requests that arrive while a run is in progress are coalesced: up to ROUND_TEXTS texts from
// several callers (concurrent jobs' batches) are sorted by length and embedded in micro-batches of
// similar length, one ONNX run at a time. Small per-job batches of mixed lengths run concurrently
// would pad heavily and fight over the same intra-op threads.
const ROUND_TEXTS = 128;
const queue = [];
let draining = false;

parentPort.on('message', (request) => {
  queue.push(request);
  if (!draining) drain();
});

async function drain() {
  draining = true;
  try {
    while (queue.length > 0) {
      const round = [];
      let size = 0;
      while (queue.length > 0 && (round.length === 0 || size + queue[0].texts.length <= ROUND_TEXTS)) {
        const request = queue.shift();
        request.out = new Array(request.texts.length);
        round.push(request);
        size += request.texts.length;
      }
      const items = [];
      for (const request of round) request.texts.forEach((text, index) => items.push({ request, index, text }));
      items.sort((a, b) => a.text.length - b.text.length);
      const started = performance.now();
      for (let i = 0; i < items.length; i += workerData.batchSize) {
        const slice = items.slice(i, i + workerData.batchSize);
        try {
          const vectors = await embedBatch(slice.map((item) => item.text));
          slice.forEach((item, j) => { item.request.out[item.index] = vectors[j]; });
        } catch (error) {
          for (const item of slice) item.request.error = String((error && error.stack) || error);
        }
      }
      const busyMs = performance.now() - started;
      round.forEach((request, i) => {
        // The round's running time travels with its first answer: how busy the model is, for benchmarks.
        const busy = i === 0 ? busyMs : 0;
        parentPort.postMessage(request.error ? { id: request.id, error: request.error, busyMs: busy } : { id: request.id, vectors: request.out, busyMs: busy });
      });
    }
  } finally {
    draining = false;
  }
}
ready.then(() => parentPort.postMessage({ ready: true }), (error) => parentPort.postMessage({ ready: false, error: String(error) }));
`;

export interface LocalEmbedderOptions {
  cacheDir: string;
  /** ONNX Runtime intra-op threads; defaults to the machine's cores (at most 4). */
  threads?: number;
  batchSize?: number;
  log?: (line: string) => void;
}

export class LocalEmbedder implements Embedder {
  readonly model = LOCAL_MODEL.name;
  readonly dims = LOCAL_MODEL.dims;
  private worker?: Worker;
  private starting?: Promise<Worker>;
  private nextId = 0;
  private pending = new Map<number, { resolve: (v: number[][]) => void; reject: (e: Error) => void }>();
  /** Milliseconds the inference thread has spent embedding (tokenizing, running the model, pooling) since it started. */
  busyMs = 0;

  constructor(private readonly options: LocalEmbedderOptions) {}

  /** Installs the model if missing and starts the inference thread; embed() calls it lazily too. */
  start(): Promise<Worker> {
    this.starting ??= this.spawn().catch((error) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const worker = await this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, texts });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.starting = undefined;
    if (worker) await worker.terminate();
  }

  private async spawn(): Promise<Worker> {
    const log = this.options.log ?? ((line: string) => console.log(line));
    const modelDir = await installLocalModel(this.options.cacheDir, log);
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        modelDir,
        ortPath: require.resolve('onnxruntime-node'),
        // The package's CommonJS build (its `require` export).
        tokenizersPath: require.resolve('@huggingface/tokenizers'),
        threads: this.options.threads ?? Math.min(4, Math.max(1, os.availableParallelism())),
        batchSize: this.options.batchSize ?? 16,
        maxTokens: LOCAL_MODEL.maxTokens,
        dims: LOCAL_MODEL.dims,
      },
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: boolean; error?: string }) => {
        if (message.ready === undefined) return;
        worker.off('message', onMessage);
        if (message.ready) resolve();
        else reject(new Error(`the embedding model failed to load: ${message.error}`));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    worker.on('message', (message: { id?: number; vectors?: number[][]; error?: string; busyMs?: number }) => {
      if (message.id === undefined) return;
      this.busyMs += message.busyMs ?? 0;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      if (!waiter) return;
      if (message.error) waiter.reject(new Error(`embedding failed: ${message.error}`));
      else waiter.resolve(message.vectors!);
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.starting = undefined;
      }
      this.failAll(new Error(`the embedding thread exited with code ${code}`));
    });
    // An idle inference thread must not keep the process alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error) {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
