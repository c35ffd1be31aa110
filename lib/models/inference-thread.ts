/**
 * The code of one of LocalEmbedder's embedding threads: it loads the tokenizer and a
 * single-threaded onnxruntime session, then answers each { id, texts } with one flat Float32Array
 * of mean-pooled, L2-normalised vectors (transferred, not copied) and its thread's CPU time so far.
 *
 * Plain JavaScript evaluated by Node itself (`new Worker(source, { eval: true })`): it loads the
 * native addon in the main realm even when the caller runs inside Jest's sandbox (whose typed arrays
 * would fail onnxruntime's instanceof checks), and it needs no build step of its own.
 */
export const INFERENCE_THREAD_SOURCE = `
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
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
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
  // One flat Float32Array per batch, transferred (not copied) back to the caller.
  const out = new Float32Array(B * D);
  const v = new Float64Array(D);
  encoded.forEach((row, b) => {
    v.fill(0);
    for (let j = 0; j < row.length; j++) {
      const base = (b * S + j) * D;
      for (let d = 0; d < D; d++) v[d] += hidden[base + d];
    }
    let norm = 0;
    for (let d = 0; d < D; d++) norm += v[d] * v[d];
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < D; d++) out[b * D + d] = v[d] / norm;
  });
  return out;
}

// This thread's CPU time so far (tokenizing, the model, pooling: a one-thread session runs on the
// caller's thread), where Linux tells it; the embedder sums it for benchmarks.
function cpuNs() {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

parentPort.on('message', async ({ id, texts, exit }) => {
  // Exiting from in here happens between model runs. Worker.terminate() from outside, landing inside
  // a run, makes onnxruntime-node's native code throw where nothing catches it: the process aborts.
  if (exit) process.exit(0);
  try {
    const vectors = await embedBatch(texts);
    parentPort.postMessage({ id, vectors, cpuNs: cpuNs() }, [vectors.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.stack) || error) });
  }
});
ready.then(() => parentPort.postMessage({ ready: true }), (error) => parentPort.postMessage({ ready: false, error: String(error) }));
`;
