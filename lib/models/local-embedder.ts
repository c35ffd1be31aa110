import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EmbedOptions, Embedder } from './embedder';
import { INFERENCE_THREAD_SOURCE } from './inference-thread';
import { LOCAL_MODEL, installLocalModel } from './install';

/**
 * Requests that arrive while the model is busy are coalesced: up to ROUND_TEXTS texts from several
 * callers (concurrent jobs' batches) are sorted by length and cut into micro-batches of similar
 * length, which idle threads take one at a time. Small per-job batches of mixed lengths would pad
 * heavily.
 *
 * A micro-batch is bounded by its padded size (texts × the longest one's characters), not only by a
 * count: on a CPU, one run over many tokens is slower per token than several small runs, as its
 * activations (tokens × 1,536 floats in each feed-forward layer) outgrow the core's cache. Measured
 * on 2 cores, the 400 bench chunks (~720 characters, ~150 tokens each), 4 times each: 16 texts a run
 * took 22.6–26.6 CPU-s, 8 took 19.5–22.8, 2 took 17.6–20.7, one 18.0–20.5. Padding explains only 8%
 * of it (66.2k padded tokens against 61.1k). So a chunk runs alone or with one or two others of its
 * length, while short texts (entity names) still share a run, up to MICRO_BATCH_TEXTS. An urgent text
 * (a search's query) now waits for runs of one or two chunks: beside that backlog, a query's vector
 * took p50 24 ms, p90 39 ms against 238 and 622 ms with runs of 16.
 */
const ROUND_TEXTS = 128;
const MICRO_BATCH_TEXTS = 32;
/** About 300 tokens of English. */
const MICRO_BATCH_CHARS = 1_200;

interface Request {
  texts: string[];
  vectors: number[][];
  remaining: number;
  resolve(vectors: number[][]): void;
  reject(error: Error): void;
}

interface Item {
  request: Request;
  index: number;
}

const byLength = (items: Item[]) => items.sort((a, b) => a.request.texts[a.index]!.length - b.request.texts[b.index]!.length);

interface InferenceThread {
  worker: Worker;
  /** The micro-batch it is running, if any. */
  batch?: Item[];
  /** Its CPU time when it last finished a micro-batch, in nanoseconds (Linux only). */
  cpuNs?: number;
  exited: Promise<void>;
}

export interface LocalEmbedderOptions {
  cacheDir: string;
  /** Inference threads, each running one micro-batch on one core; defaults to the machine's cores (at most 4). */
  threads?: number;
  /** The most texts in one micro-batch (MICRO_BATCH_TEXTS). */
  batchSize?: number;
  /** The most characters a micro-batch may pad to: texts × the longest one's length (MICRO_BATCH_CHARS). */
  batchChars?: number;
  log?: (line: string) => void;
}

/**
 * all-MiniLM-L6-v2 in-process through onnxruntime-node, on worker threads: inference is CPU-heavy and
 * must not stall the event loop that serves HTTP and Temporal heartbeats (the threads' code is
 * inference-thread.ts). Output: mean-pooled, L2-normalised 384-d vectors, as sentence-transformers
 * computes them.
 *
 * Parallelism is across batches, not inside one: each thread holds its own single-threaded session
 * and runs whole micro-batches. One session with two intra-op threads splits every matrix product in
 * halves and waits for the slower half, so on cores shared with Elasticsearch, Temporal and the
 * pipeline's own parsing, any other burst of work stalls the whole model. Independent sessions lose
 * only the thread that was preempted. Measured on 2 cores, 400 bench-sized texts: alone 77 against 82
 * chunks/s (one two-thread session), beside two bursty processes worth one core 37 against 30.
 * Each session holds its own copy of the weights (~90 MB).
 */
export class LocalEmbedder implements Embedder {
  readonly model = LOCAL_MODEL.name;
  readonly dims = LOCAL_MODEL.dims;
  private threads: InferenceThread[] = [];
  private starting?: Promise<void>;
  private queue: Request[] = [];
  /** The current round's micro-batches not yet taken by a thread. */
  private round: Item[][] = [];
  private nextId = 0;
  private running = new Map<number, InferenceThread>();
  private busySince?: number;
  private modelDir?: string;
  /** Counts stop()s: a replacement thread that finishes loading after one is not kept. */
  private generation = 0;
  /** Milliseconds during which at least one inference thread was embedding (tokenizing, running the model, pooling). */
  busyMs = 0;
  /** CPU time of the threads this embedder no longer has, in nanoseconds. */
  private retiredCpuNs = 0;

  constructor(private readonly options: LocalEmbedderOptions) {}

  /** Installs the model if missing and starts the inference threads; embed() calls it lazily too. */
  start(): Promise<void> {
    this.starting ??= this.spawn().catch((error) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  async embed(texts: string[], options: EmbedOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    await this.start();
    return new Promise((resolve, reject) => {
      const request: Request = { texts, vectors: new Array(texts.length), remaining: texts.length, resolve, reject };
      // Ahead of the round being worked through: the next thread that frees up takes it.
      if (options.urgent) this.round.unshift(...this.microBatches(byLength(texts.map((_, index) => ({ request, index })))));
      else this.queue.push(request);
      this.dispatch();
    });
  }

  /**
   * CPU milliseconds the inference threads have used, as of their last finished micro-batch (Linux;
   * undefined elsewhere): beside the process's CPU, it tells the model's share from everything else.
   */
  get cpuMs(): number | undefined {
    const total = this.threads.reduce((sum, { cpuNs }) => sum + (cpuNs ?? 0), this.retiredCpuNs);
    return total > 0 ? total / 1e6 : undefined;
  }

  async close(): Promise<void> {
    await this.stop(new Error('the embedder was closed'));
  }

  /** Hands micro-batches to idle threads, forming the next round when the current one is used up. */
  private dispatch(): void {
    for (const thread of this.threads) {
      if (thread.batch) continue;
      if (this.round.length === 0) this.round = this.nextRound();
      const batch = this.round.shift();
      if (!batch) break;
      thread.batch = batch;
      const id = this.nextId++;
      this.running.set(id, thread);
      if (this.busySince === undefined) this.busySince = performance.now();
      thread.worker.ref();
      thread.worker.postMessage({ id, texts: batch.map(({ request, index }) => request.texts[index]!) });
    }
  }

  private nextRound(): Item[][] {
    const items: Item[] = [];
    while (this.queue.length > 0 && (items.length === 0 || items.length + this.queue[0]!.texts.length <= ROUND_TEXTS)) {
      const request = this.queue.shift()!;
      request.texts.forEach((_, index) => items.push({ request, index }));
    }
    return this.microBatches(byLength(items));
  }

  /** `items`, in order, cut where a micro-batch would outgrow MICRO_BATCH_TEXTS or MICRO_BATCH_CHARS. */
  private microBatches(items: Item[]): Item[][] {
    const most = this.options.batchSize ?? MICRO_BATCH_TEXTS;
    const budget = this.options.batchChars ?? MICRO_BATCH_CHARS;
    const batches: Item[][] = [];
    let batch: Item[] = [];
    let longest = 0;
    for (const item of items) {
      const length = item.request.texts[item.index]!.length;
      if (batch.length > 0 && (batch.length === most || (batch.length + 1) * Math.max(longest, length) > budget)) {
        batches.push(batch);
        batch = [];
        longest = 0;
      }
      batch.push(item);
      longest = Math.max(longest, length);
    }
    if (batch.length > 0) batches.push(batch);
    return batches;
  }

  private finished(id: number, vectors: Float32Array | undefined, error: Error | undefined): void {
    const thread = this.running.get(id);
    this.running.delete(id);
    const batch = thread?.batch;
    if (!thread || !batch) return;
    thread.batch = undefined;
    if (this.running.size === 0) {
      this.busyMs += performance.now() - (this.busySince ?? performance.now());
      this.busySince = undefined;
      if (this.queue.length === 0 && this.round.length === 0) this.threads.forEach(({ worker }) => worker.unref());
    }
    batch.forEach(({ request, index }, i) => {
      request.remaining -= 1;
      // A caller hears of a failure at once; the rest of its texts still run, and are dropped.
      if (error) request.reject(error);
      else request.vectors[index] = Array.from(vectors!.subarray(i * this.dims, (i + 1) * this.dims));
      if (request.remaining === 0) request.resolve(request.vectors);
    });
    this.dispatch();
  }

  private async spawn(): Promise<void> {
    const log = this.options.log ?? ((line: string) => console.log(line));
    const modelDir = await installLocalModel(this.options.cacheDir, log);
    const count = this.options.threads ?? Math.min(4, Math.max(1, os.availableParallelism()));
    const spawned = await Promise.allSettled(Array.from({ length: count }, () => this.spawnThread(modelDir)));
    const workers = spawned.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = spawned.find((result) => result.status === 'rejected');
    if (failure) {
      await Promise.all(workers.map((worker) => worker.terminate()));
      throw failure.reason;
    }
    this.modelDir = modelDir;
    this.threads = workers.map((worker) => this.inferenceThread(worker));
  }

  private inferenceThread(worker: Worker): InferenceThread {
    const thread: InferenceThread = { worker, exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())) };
    worker.on('message', (message: { id?: number; vectors?: Float32Array; error?: string; cpuNs?: number }) => {
      if (message.id === undefined) return;
      if (message.cpuNs !== undefined) thread.cpuNs = message.cpuNs;
      this.finished(message.id, message.vectors, message.error === undefined ? undefined : new Error(`embedding failed: ${message.error}`));
    });
    worker.on('error', (error) => this.lost(thread, error));
    worker.on('exit', (code) => this.lost(thread, new Error(`an embedding thread exited with code ${code}`)));
    return thread;
  }

  private async spawnThread(modelDir: string): Promise<Worker> {
    const worker = new Worker(INFERENCE_THREAD_SOURCE, {
      eval: true,
      workerData: {
        modelDir,
        ortPath: require.resolve('onnxruntime-node'),
        // The package's CommonJS build (its `require` export).
        tokenizersPath: require.resolve('@huggingface/tokenizers'),
        maxTokens: LOCAL_MODEL.maxTokens,
        dims: LOCAL_MODEL.dims,
      },
    });
    try {
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
    } catch (error) {
      await worker.terminate(); // not running the model: it never loaded
      throw error;
    }
    // An idle inference thread must not keep the process alive.
    worker.unref();
    return worker;
  }

  /**
   * A thread that died fails the batch it was running (callers retry, as activities do); the other
   * threads go on with the queue, and a replacement is started. Only when none is left does the
   * queue fail too, and the next embed() starts afresh.
   */
  private lost(thread: InferenceThread, error: Error): void {
    if (!this.threads.includes(thread)) return;
    this.threads = this.threads.filter((other) => other !== thread);
    this.retiredCpuNs += thread.cpuNs ?? 0;
    for (const [id, running] of this.running) if (running === thread) this.finished(id, undefined, error);
    if (this.threads.length === 0) {
      void this.stop(error);
      return;
    }
    const generation = this.generation;
    void this.spawnThread(this.modelDir!).then(
      (worker) => {
        if (this.generation !== generation) return void worker.postMessage({ exit: true }); // stopped meanwhile
        this.threads = [...this.threads, this.inferenceThread(worker)];
        this.dispatch();
      },
      (failure: Error) => (this.options.log ?? console.log)(`an embedding thread could not be replaced: ${failure.message}`),
    );
  }

  /** Stops every thread and fails whatever was queued or running with `error`. */
  private async stop(error: Error): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    this.retiredCpuNs += threads.reduce((sum, { cpuNs }) => sum + (cpuNs ?? 0), 0);
    this.starting = undefined;
    this.generation += 1;
    const requests = new Set<Request>(this.queue);
    for (const batch of [...this.round, ...threads.map((t) => t.batch ?? [])]) for (const { request } of batch) requests.add(request);
    this.queue = [];
    this.round = [];
    this.running.clear();
    if (this.busySince !== undefined) this.busyMs += performance.now() - this.busySince;
    this.busySince = undefined;
    for (const request of requests) request.reject(error);
    // Each thread is asked to exit, which it does once its current run (if any) is over.
    for (const { worker } of threads) {
      worker.ref(); // until it has exited: close() resolves only then
      worker.postMessage({ exit: true });
    }
    await Promise.all(threads.map(({ exited }) => exited));
  }
}
