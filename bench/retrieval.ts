/**
 * `npm run bench:retrieval -- <locomo-file.json …> [--json] [--misses]`
 *
 * Retrieval recall on LoCoMo through the real path: every session is ingested with its date through
 * POST /v1/conversations (turns carry name = speaker and turn_id = dia_id), runs the ingest workflow on
 * Temporal and lands in Elasticsearch; then every question with evidence (categories 1–4) is asked
 * through POST /v1/search in each mode. recall@k = share of a question's evidence turns found among the
 * top-k results' provenance.turn_ids, averaged over questions. With --json the last stdout line is
 * {"bm25": {"overall": {"1": r, …}, "1": {…}, …}, "knn": {…}, "hybrid": {…}}. Each search asks for the top 20.
 * `--misses` prints each question hybrid search misses at k=10, with its evidence and what ranked instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { STAGES, type JobProgress } from '../lib/domain/job';
import { SEARCH_MODES, type SearchMode } from '../lib/search/plan';
import { startHarness, type Harness } from '../test/support/harness';
import { meanStageMs, round } from './stats';

const TENANT = 'bench';
const KS = [1, 5, 10, 20] as const;
const CATEGORIES = ['1', '2', '3', '4'] as const;
const CATEGORY_NAMES: Record<string, string> = { '1': 'multi-hop', '2': 'temporal', '3': 'open-domain', '4': 'single-hop' };

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}
interface Question {
  question: string;
  evidence?: string[];
  category: number;
}
interface Sample {
  id: string;
  sessions: { n: number; date?: string; turns: Turn[] }[];
  questions: Question[];
}

function loadSamples(file: string): Sample[] {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const items = (Array.isArray(raw) ? raw : [raw]) as Record<string, unknown>[];
  return items.map((item, i) => {
    const conversation = (item.conversation ?? item) as Record<string, unknown>;
    const sessions = Object.keys(conversation)
      .map((key) => /^session_(\d+)$/.exec(key))
      .filter((match): match is RegExpExecArray => Boolean(match) && Array.isArray(conversation[match![0]]))
      .map((match) => ({
        n: Number(match[1]),
        date: conversation[`session_${match[1]}_date_time`] as string | undefined,
        turns: conversation[match[0]] as Turn[],
      }))
      .filter((session) => session.turns.length > 0)
      .sort((a, b) => a.n - b.n);
    const id = String(item.sample_id ?? `${path.basename(file, '.json')}${items.length > 1 ? `-${i}` : ''}`);
    return { id: id.replace(/[^A-Za-z0-9_.-]/g, '_'), sessions, questions: (item.qa ?? []) as Question[] };
  });
}

/** Images are part of what was said: the dataset's captions stand in for them. */
const turnContent = (turn: Turn) => (turn.blip_caption ? `${turn.text} [shares a photo of ${turn.blip_caption}]` : turn.text);

/** One sample's sessions ingested as conversations, all at once: the wall time and each job's progress. */
async function ingest(h: Harness, sample: Sample): Promise<{ ms: number; progresses: JobProgress[] }> {
  const started = performance.now();
  const jobs = await Promise.all(
    sample.sessions.map(async (session) => {
      const response = await h.api('POST', '/v1/conversations', {
        body: {
          conversation_id: `${sample.id}-session-${session.n}`,
          session_id: `${sample.id}-session-${session.n}`,
          // As the dataset writes it ("1:56 pm on 8 May, 2023"): the API normalises it to ISO 8601.
          session_date: session.date,
          scope: { space_id: sample.id },
          messages: session.turns.filter((turn) => turn.text?.trim()).map((turn) => ({ role: 'user', name: turn.speaker, content: turnContent(turn), turn_id: turn.dia_id })),
        },
      });
      if (response.status !== 202) throw new Error(`ingest of ${sample.id} session ${session.n} answered ${response.status}: ${JSON.stringify(response.body)}`);
      return response.body.job_id as string;
    }),
  );
  const progresses: JobProgress[] = [];
  for (const jobId of jobs) {
    const progress = await h.waitForJob(TENANT, jobId, 600_000);
    if (progress.status !== 'completed') throw new Error(`job ${jobId} ended ${progress.status}: ${JSON.stringify(progress.errors ?? progress)}`);
    progresses.push(progress);
  }
  return { ms: performance.now() - started, progresses };
}

type Sums = Record<string, { n: number } & Record<number, number>>;

async function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  // Prints each hybrid miss at k=10 (question, evidence, what ranked instead): for failure analysis.
  const misses = args.includes('--misses');
  const files = args.filter((arg) => !arg.startsWith('--'));
  if (files.length === 0) {
    console.error('usage: npm run bench:retrieval -- <locomo-file.json …> [--json] [--misses]');
    process.exit(2);
  }
  const log = json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const samples = files.flatMap(loadSamples);
  const h = await startHarness({ tenants: [TENANT] });
  const sums: Record<SearchMode, Sums> = { hybrid: {}, bm25: {}, knn: {} };
  const latencies: Record<SearchMode, number[]> = { hybrid: [], bm25: [], knn: [] };
  let ingestMs = 0;
  let ingestCpuMs = 0;
  let turns = 0;
  const progresses: JobProgress[] = [];
  try {
    for (const sample of samples) {
      const cpuBefore = process.cpuUsage();
      const { ms, progresses: sampleProgresses } = await ingest(h, sample);
      const cpu = process.cpuUsage(cpuBefore);
      ingestCpuMs += (cpu.user + cpu.system) / 1000;
      ingestMs += ms;
      progresses.push(...sampleProgresses);
      const count = sample.sessions.reduce((n, s) => n + s.turns.length, 0);
      turns += count;
      log(`ingested ${sample.id}: ${sample.sessions.length} sessions, ${count} turns in ${(ms / 1000).toFixed(1)} s`);
      const questions = sample.questions.filter((q) => CATEGORIES.includes(String(q.category) as never) && q.evidence?.length);
      for (const question of questions) {
        const evidence = new Set(question.evidence!.flatMap((e) => e.split(/[;,\s]+/)).filter((e) => /^D\d+:\d+$/.test(e)));
        if (evidence.size === 0) continue;
        for (const mode of SEARCH_MODES) {
          const started = performance.now();
          const response = await h.api('POST', '/v1/search', { body: { query: question.question, mode, top_k: 20, filters: { space_id: sample.id } } });
          latencies[mode].push(performance.now() - started);
          if (response.status !== 200) throw new Error(`search answered ${response.status}: ${JSON.stringify(response.body)}`);
          const results = response.body.results as { text: string; provenance: { turn_ids?: string[] } }[];
          if (misses && mode === 'hybrid') reportMiss(sample, question, evidence, results, log);
          for (const key of ['overall', String(question.category)]) {
            const entry = (sums[mode][key] ??= { n: 0, 1: 0, 5: 0, 10: 0, 20: 0 });
            entry.n += 1;
            for (const k of KS) {
              const found = new Set(results.slice(0, k).flatMap((result) => result.provenance.turn_ids ?? []));
              entry[k] += [...evidence].filter((id) => found.has(id)).length / evidence.size;
            }
          }
        }
      }
    }
  } finally {
    await h.close();
  }

  const report = Object.fromEntries(
    SEARCH_MODES.map((mode) => [
      mode,
      Object.fromEntries(
        ['overall', ...CATEGORIES].filter((key) => sums[mode][key]).map((key) => [key, Object.fromEntries(KS.map((k) => [String(k), round(sums[mode][key]![k]! / sums[mode][key]!.n, 4)]))]),
      ),
    ]),
  );
  // Stage times are wall times of jobs that ran side by side; this process's CPU includes the model's.
  const stageMs = meanStageMs(progresses);
  const ingestReport = { turns, seconds: round(ingestMs / 1000, 1), turns_per_s: round((turns * 1000) / ingestMs, 1), cpu_s: round(ingestCpuMs / 1000, 1), jobs: progresses.length, stage_ms_mean: stageMs };
  log(`\nIngest: ${turns} turns in ${ingestReport.seconds} s (${ingestReport.turns_per_s} turns/s), this process ${ingestReport.cpu_s} CPU-s (the model's included)`);
  log(`mean per-job stage time over ${progresses.length} session jobs (ms): ${STAGES.map((stage) => `${stage} ${stageMs[stage]}`).join(', ')}`);
  log(`\n${'category'.padEnd(22)}${'n'.padStart(5)}  ${SEARCH_MODES.map((mode) => `${mode} R@1/5/10/20`.padEnd(28)).join('')}`);
  for (const key of ['overall', ...CATEGORIES]) {
    const n = sums.hybrid[key]?.n ?? 0;
    if (!n) continue;
    const label = key === 'overall' ? 'overall' : `${key} ${CATEGORY_NAMES[key]}`;
    const cells = SEARCH_MODES.map((mode) => KS.map((k) => (report[mode] as Record<string, Record<string, number>>)[key]![String(k)]!.toFixed(3)).join(' ').padEnd(28));
    log(`${label.padEnd(22)}${String(n).padStart(5)}  ${cells.join('')}`);
  }
  for (const mode of SEARCH_MODES) {
    const sorted = [...latencies[mode]].sort((a, b) => a - b);
    log(`${mode} search latency p50 ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, p95 ${sorted[Math.floor(sorted.length * 0.95)]?.toFixed(0)} ms`);
  }
  if (json) console.log(JSON.stringify({ ...report, ingest: ingestReport }));
}

function reportMiss(sample: Sample, question: Question, evidence: Set<string>, results: { text: string; provenance: { turn_ids?: string[] } }[], log: (line: string) => void) {
  const top = results.slice(0, 10);
  const found = new Set(top.flatMap((result) => result.provenance.turn_ids ?? []));
  const missing = [...evidence].filter((id) => !found.has(id));
  if (missing.length === 0) return;
  const turns = new Map(sample.sessions.flatMap((session) => session.turns.map((turn) => [turn.dia_id, turn] as const)));
  log(`\nMISS [${question.category}] ${question.question}`);
  for (const id of missing) {
    const rank = results.findIndex((result) => result.provenance.turn_ids?.includes(id));
    log(`  want ${id} (rank ${rank < 0 ? '>20' : rank + 1}): ${turns.get(id)?.speaker}: ${turns.get(id) ? turnContent(turns.get(id)!).slice(0, 160) : '?'}`);
  }
  for (const result of top.slice(0, 3)) log(`  got  ${result.provenance.turn_ids?.join(',')}: ${result.text.slice(0, 120).replace(/\n/g, ' ')}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  },
);
