import fs from 'node:fs';
import path from 'node:path';

/**
 * Builds an ONNX graph (opset 17) for a BERT encoder from a sentence-transformers checkpoint
 * (`model.safetensors` + `config.json`). Registries ship all-MiniLM-L6-v2 only as safetensors and the
 * machine cannot reach a model hub, so the ONNX file is made here at install time instead of
 * requiring PyTorch. Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64 [batch, seq]);
 * output `last_hidden_state` (float32 [batch, seq, hidden]) — the layout of the usual ONNX exports.
 * Only the handful of protobuf messages ONNX needs are encoded.
 */

// ---- protobuf wire format
function varint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
type Part = Buffer | false | undefined | Part[];
function flatten(parts: Part[], out: Buffer[] = []): Buffer[] {
  for (const part of parts) {
    if (Array.isArray(part)) flatten(part, out);
    else if (part) out.push(part);
  }
  return out;
}
const msg = (...parts: Part[]): Buffer => Buffer.concat(flatten(parts));
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const fInt = (field: number, n: number | bigint) => msg(tag(field, 0), varint(n));
const fBytes = (field: number, bytes: Buffer | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return msg(tag(field, 2), varint(b.length), b);
};
const fFloat = (field: number, x: number) => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return msg(tag(field, 5), b);
};

const FLOAT = 1;
const INT64 = 7;

// TensorProto: dims=1, data_type=2, name=8, raw_data=9
const tensor = (name: string, dataType: number, dims: number[], raw: Buffer) =>
  msg(dims.map((d) => fInt(1, d)), fInt(2, dataType), fBytes(8, name), fBytes(9, raw));
// AttributeProto: name=1, f=2, i=3, ints=8, type=20 (FLOAT=1, INT=2, INTS=7)
const attrInt = (name: string, v: number) => msg(fBytes(1, name), fInt(3, v), fInt(20, 2));
const attrInts = (name: string, v: number[]) => msg(fBytes(1, name), v.map((x) => fInt(8, x)), fInt(20, 7));
const attrFloat = (name: string, x: number) => msg(fBytes(1, name), fFloat(2, x), fInt(20, 1));
// NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
const nodeProto = (op: string, inputs: string[], output: string, attrs: Buffer[]) =>
  msg(inputs.map((i) => fBytes(1, i)), fBytes(2, output), fBytes(3, `${op}_${output}`), fBytes(4, op), attrs.map((a) => fBytes(5, a)));
// ValueInfoProto{name=1,type=2}; TypeProto{tensor_type=1}; Tensor{elem_type=1,shape=2}; Shape{dim=1}; Dim{value=1,param=2}
function valueInfo(name: string, elemType: number, dims: (number | string)[]) {
  const shape = msg(dims.map((d) => fBytes(1, typeof d === 'string' ? fBytes(2, d) : fInt(1, d))));
  return msg(fBytes(1, name), fBytes(2, fBytes(1, msg(fInt(1, elemType), fBytes(2, shape)))));
}

// ---- safetensors
interface Weights {
  get(name: string): { data: Float32Array; shape: number[] };
  names: string[];
}

function readSafetensors(file: string): Weights {
  const buf = fs.readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLength;
  return {
    names: Object.keys(header),
    get(name) {
      const entry = header[name];
      if (!entry) throw new Error(`the checkpoint has no tensor ${name}`);
      if (entry.dtype !== 'F32') throw new Error(`${name}: dtype ${entry.dtype} is not supported`);
      const [start, end] = entry.data_offsets;
      const data = new Float32Array((end - start) / 4);
      Buffer.from(data.buffer).set(buf.subarray(base + start, base + end));
      return { data, shape: entry.shape };
    },
  };
}

interface BertConfig {
  model_type: string;
  hidden_act?: string;
  hidden_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  layer_norm_eps?: number;
}

export function buildBertOnnx(modelDir: string): Buffer {
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as BertConfig;
  if (cfg.model_type !== 'bert') throw new Error(`model_type ${cfg.model_type} is not supported`);
  if ((cfg.hidden_act ?? 'gelu') !== 'gelu') throw new Error(`hidden_act ${cfg.hidden_act} is not supported`);
  const H = cfg.hidden_size;
  const NH = cfg.num_attention_heads;
  const HD = H / NH;
  const eps = cfg.layer_norm_eps ?? 1e-12;
  const weights = readSafetensors(path.join(modelDir, 'model.safetensors'));
  const prefix = weights.names.some((n) => n.startsWith('bert.')) ? 'bert.' : '';

  const nodes: Buffer[] = [];
  const inits: Buffer[] = [];
  const f32 = (name: string, arr: Float32Array, dims: number[]) => {
    inits.push(tensor(name, FLOAT, dims, Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength)));
    return name;
  };
  const i64 = (name: string, values: number[], dims = [values.length]) => {
    const a = BigInt64Array.from(values.map(BigInt));
    inits.push(tensor(name, INT64, dims, Buffer.from(a.buffer)));
    return name;
  };
  const scalar = (name: string, x: number) => f32(name, new Float32Array([x]), []);
  const param = (n: string) => {
    const t = weights.get(prefix + n);
    return f32(n, t.data, t.shape);
  };
  // torch Linear stores [out, in]; MatMul wants [in, out].
  const linearWeight = (n: string) => {
    const t = weights.get(prefix + n);
    const [o, i] = t.shape as [number, number];
    const w = new Float32Array(o * i);
    for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) w[c * o + r] = t.data[r * i + c]!;
    return f32(n, w, [i, o]);
  };
  const N = (op: string, inputs: string[], out: string, attrs: Buffer[] = []) => {
    nodes.push(nodeProto(op, inputs, out, attrs));
    return out;
  };
  const linear = (x: string, p: string, out: string) => N('Add', [N('MatMul', [x, linearWeight(`${p}.weight`)], `${out}_mm`), param(`${p}.bias`)], out);
  const layerNorm = (x: string, p: string, out: string) =>
    N('LayerNormalization', [x, param(`${p}.weight`), param(`${p}.bias`)], out, [attrInt('axis', -1), attrFloat('epsilon', eps)]);

  i64('c_heads_shape', [0, 0, NH, HD]);
  i64('c_hidden_shape', [0, 0, H]);
  i64('c_axes_12', [1, 2]);
  i64('c_zero_i64', [0], []);
  i64('c_one_i64', [1], []);
  scalar('c_one', 1);
  scalar('c_neg', -10000);
  scalar('c_scale', 1 / Math.sqrt(HD));
  scalar('c_half', 0.5);
  scalar('c_sqrt2', Math.SQRT2);

  const e = 'embeddings';
  N('Gather', [param(`${e}.word_embeddings.weight`), 'input_ids'], 'emb_word', [attrInt('axis', 0)]);
  N('Shape', ['input_ids'], 'seq_len_1d', [attrInt('start', 1), attrInt('end', 2)]);
  N('Squeeze', ['seq_len_1d'], 'seq_len');
  N('Range', ['c_zero_i64', 'seq_len', 'c_one_i64'], 'position_ids');
  N('Gather', [param(`${e}.position_embeddings.weight`), 'position_ids'], 'emb_pos', [attrInt('axis', 0)]);
  N('Gather', [param(`${e}.token_type_embeddings.weight`), 'token_type_ids'], 'emb_type', [attrInt('axis', 0)]);
  N('Add', [N('Add', ['emb_word', 'emb_pos'], 'emb_wp'), 'emb_type'], 'emb_sum');
  let x = layerNorm('emb_sum', `${e}.LayerNorm`, 'emb_out');

  // Additive attention mask [B,1,1,S]: 0 for tokens, -1e4 for padding.
  N('Cast', ['attention_mask'], 'mask_f', [attrInt('to', FLOAT)]);
  N('Mul', [N('Sub', ['c_one', 'mask_f'], 'mask_inv'), 'c_neg'], 'mask_add2d');
  N('Unsqueeze', ['mask_add2d', 'c_axes_12'], 'mask_add');

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}`;
    const s = `l${l}`;
    const heads = (name: string, perm: number[]) =>
      N('Transpose', [N('Reshape', [linear(x, `${p}.attention.self.${name}`, `${s}_${name}`), 'c_heads_shape'], `${s}_${name}_r`)], `${s}_${name}_t`, [attrInts('perm', perm)]);
    const q = heads('query', [0, 2, 1, 3]);
    const k = heads('key', [0, 2, 3, 1]);
    const v = heads('value', [0, 2, 1, 3]);
    N('MatMul', [q, k], `${s}_qk`);
    N('Add', [N('Mul', [`${s}_qk`, 'c_scale'], `${s}_qk_s`), 'mask_add'], `${s}_scores`);
    N('Softmax', [`${s}_scores`], `${s}_probs`, [attrInt('axis', -1)]);
    N('MatMul', [`${s}_probs`, v], `${s}_ctx`);
    N('Reshape', [N('Transpose', [`${s}_ctx`], `${s}_ctx_t`, [attrInts('perm', [0, 2, 1, 3])]), 'c_hidden_shape'], `${s}_ctx_r`);
    linear(`${s}_ctx_r`, `${p}.attention.output.dense`, `${s}_attn_o`);
    const x1 = layerNorm(N('Add', [`${s}_attn_o`, x], `${s}_res1`), `${p}.attention.output.LayerNorm`, `${s}_ln1`);
    const h = linear(x1, `${p}.intermediate.dense`, `${s}_inter`);
    // BERT's exact GELU: 0.5 · h · (1 + erf(h / √2)).
    N('Erf', [N('Div', [h, 'c_sqrt2'], `${s}_g_div`)], `${s}_g_erf`);
    N('Mul', [N('Mul', [h, N('Add', [`${s}_g_erf`, 'c_one'], `${s}_g_add`)], `${s}_g_mul`), 'c_half'], `${s}_gelu`);
    linear(`${s}_gelu`, `${p}.output.dense`, `${s}_ffn_o`);
    const out = l === cfg.num_hidden_layers - 1 ? 'last_hidden_state' : `${s}_out`;
    x = layerNorm(N('Add', [`${s}_ffn_o`, x1], `${s}_res2`), `${p}.output.LayerNorm`, out);
  }

  const graph = msg(
    nodes.map((n) => fBytes(1, n)),
    fBytes(2, 'bert'),
    inits.map((t) => fBytes(5, t)),
    ['input_ids', 'attention_mask', 'token_type_ids'].map((n) => fBytes(11, valueInfo(n, INT64, ['batch_size', 'sequence_length']))),
    fBytes(12, valueInfo('last_hidden_state', FLOAT, ['batch_size', 'sequence_length', H])),
  );
  // ModelProto: ir_version=1, producer_name=2, graph=7, opset_import=8 {domain=1, version=2}
  return msg(fInt(1, 8), fBytes(2, 'cairn'), fBytes(7, graph), fBytes(8, msg(fBytes(1, ''), fInt(2, 17))));
}
