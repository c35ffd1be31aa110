/**
 * `npm run bench:ingest -- [--docs 42] [--warmup-docs 42] [--concurrency 16] [--jobs-in-flight 0] [--repeat 1] [--json] [--cpu-profile main.cpuprofile]`
 *
 * Ingest throughput through the real path: a generated corpus of every document format goes through
 * the API (POST /v1/documents for text formats, POST /v1/files for PDF and DOCX), one Temporal workflow
 * per job, and lands in Elasticsearch. The corpus is submitted as a bulk import would submit it:
 * `--concurrency` uploads at a time, without waiting for jobs to finish, and the clock stops when the
 * last job has. `--jobs-in-flight N` instead models a client that waits for each job before sending
 * its next document, N at a time: then the per-job latency (each job's wait for an index refresh
 * included) bounds the rate as much as the pipeline does. In-process by default (API + worker against the local services,
 * on a throw-away index prefix and task queue); set CAIRN_URL (and CAIRN_API_KEY) to drive a running
 * API instead. In the same run the embedder alone embeds the same chunks (before and after the pipeline;
 * the faster run counts), so the cost of orchestration shows as overhead_ratio = chunks_per_s ÷
 * embedder_chunks_per_s (1.0 = free orchestration). The machine may be shared: the CPU seconds of this
 * process and of Elasticsearch, and the load average, are reported beside the rates; so are how busy the
 * embedding model was during the run (idle there = time the pipeline made it wait), how many texts it
 * embedded (a text embedded twice would show), the requests made to Elasticsearch and the work it did
 * on the bench's own indices (indexing, refreshes, merges), the local Temporal server's CPU, and
 * `window_ms` to line the run up with outside CPU samplers; `first_job_s` is when the first job of the
 * burst was done. From the CPU seconds it prints the cpu-bound ceiling: the best overhead_ratio the
 * run's CPU cost allows on this machine's cores (and, `cpu_bound_ceiling_process_only`, what this
 * process's CPU alone allows, as with Elasticsearch and Temporal on other machines); and, where Linux
 * tells a thread's CPU time, the model's own CPU against all the rest (`model_cpu_s`,
 * `outside_model_cpu_s`: what orchestration costs, whatever the model's speed), in process this
 * process's share of the rest split between its main thread and its other threads
 * (`main_thread_cpu_s`, `other_threads_cpu_s`), and how much of the rest overhead_ratio 0.8 would
 * leave. BATCH_SIZE and BATCH_CONCURRENCY (env) tune the fan-out. `--repeat N` times N rounds (the
 * same documents again under new ids, each round between two embedder-alone runs) and reports every
 * round's ratio and their median: on a shared 2-core machine one round's ratio moves
 * by ±0.04 from run to run. With --json the last stdout line is one JSON object (with --repeat, the
 * median round's, plus `overhead_ratio_runs`).
 */
import os from 'node:os';
import { mapBounded } from '../lib/map-bounded';
import type { JobProgress } from '../lib/domain/job';
import { STAGES } from '../lib/domain/job';
import { FORMATS, chunkTexts, makeDocument } from './ingest/corpus';
import {
  activityTimings,
  countEmbeddings,
  countRequests,
  elasticsearchCpuSeconds,
  embedderAlone,
  indexWork,
  localTemporalCpuSeconds,
  mainThreadCpuSeconds,
  modelMs,
  startMainThreadProfile,
} from './ingest/measures';
import { inProcessTarget, remoteTarget } from './ingest/targets';
import { meanStageMs, round } from './stats';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number, not ${process.argv[at + 1] ?? 'nothing'}`);
  return value;
}


/** One timed round's figures (the --json line's fields). */
type Round = Record<string, unknown> & { overhead_ratio: number | null };

function median(values: (number | null)[]): number | null {
  const known = values.filter((value): value is number => value !== null).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const mid = known.length >> 1;
  return known.length % 2 ? known[mid]! : round((known[mid - 1]! + known[mid]!) / 2, 3);
}

async function main() {
  const json = process.argv.includes('--json');
  const docs = option('docs', 42);
  const concurrency = option('concurrency', 16);
  const jobsInFlight = option('jobs-in-flight', 0);
  const warmDocs = Math.max(1, option('warmup-docs', docs));
  const repeat = Math.max(1, option('repeat', 1));
  const log = json ? (line: string) => console.error(line) : (line: string) => console.log(line);

  const corpus = await Promise.all(Array.from({ length: docs }, (_, i) => makeDocument(i)));
  const target = process.env.CAIRN_URL ? await remoteTarget(process.env.CAIRN_URL) : await inProcessTarget();
  const { config } = target;
  const batchSize = config.BATCH_SIZE;
  const batchConcurrency = config.BATCH_CONCURRENCY;
  try {
    log(`corpus: ${docs} documents (${FORMATS.join(', ')}), ${(corpus.reduce((n, d) => n + d.bytes.length, 0) / 1024).toFixed(0)} KB; ` +
      `BATCH_SIZE=${batchSize} BATCH_CONCURRENCY=${batchConcurrency}, ${concurrency} uploads in flight, ` +
      `${jobsInFlight > 0 ? `at most ${jobsInFlight} jobs in flight` : 'every job submitted at once'}, after ${warmDocs} untimed warm-up documents; ` +
      `target ${process.env.CAIRN_URL ?? 'in-process API + worker'}`);

    // Warm-up, not timed: the workflow bundle cache, model threads and index mappings, and the JIT
    // compilers of this process and of Elasticsearch. A JVM that has been idle compiles the indexing
    // and refresh paths again as they heat up (on a node up for 20 minutes, its C2 compiler still took
    // 1.6–2.6 CPU-s of every 42-document run after a one-document warm-up), so a round of documents the
    // size of the corpus (other text, other sources) goes first and the timed run measures the steady
    // state. `--warmup-docs 1` measures a colder start instead.
    const warmups = await Promise.all(Array.from({ length: warmDocs }, (_, i) => makeDocument(10_000 + i)));
    const warmIds = await mapBounded(warmups, concurrency, (document) => target.submit({ ...document, name: `warmup-${Date.now()}-${document.name}` }));
    await Promise.all(warmIds.map((jobId) => target.wait(jobId)));

    // The embedder alone on the same chunks, before and after the pipeline (see below).
    const alone = target.embedder ? await embedderAlone(target.embedder, await chunkTexts(corpus, config), batchSize, batchConcurrency) : undefined;
    let before = await alone?.run();
    const rounds: Round[] = [];
    for (let r = 0; r < repeat; r++) {
      // Later rounds send the same documents under new ids: the same work, nothing deduplicated away.
      const documents = r === 0 ? corpus : corpus.map((document) => ({ ...document, name: `${document.name}-round${r + 1}` }));
      if (repeat > 1) log(`round ${r + 1} of ${repeat}:`);
      const loadBefore = os.loadavg()[0]!;
      const requests = target.es ? countRequests(target.es) : undefined;
      const embeddings = target.embedder && !process.env.CAIRN_URL ? countEmbeddings(target.embedder) : undefined;
      const esCpuBefore = target.es ? await elasticsearchCpuSeconds(target.es) : undefined;
      const temporalCpuBefore = process.env.CAIRN_URL ? undefined : localTemporalCpuSeconds(config);
      const profileAt = process.argv.indexOf('--cpu-profile');
      const stopProfile = await startMainThreadProfile(profileAt > 0 ? process.argv[profileAt + 1] : undefined);
      const busyBefore = modelMs(target.embedder, 'busyMs');
      const modelCpuBefore = modelMs(target.embedder, 'cpuMs');
      const cpuBefore = process.cpuUsage();
      // In process only: against a running API (CAIRN_URL) the main thread here is the load generator's.
      const mainCpuBefore = process.env.CAIRN_URL ? undefined : mainThreadCpuSeconds();
      const started = performance.now();
      const startedAt = Date.now();
      let jobIds: string[];
      let progresses: JobProgress[];
      if (jobsInFlight > 0) {
        // A client that waits for each job before sending its next document.
        jobIds = [];
        progresses = await mapBounded(documents, jobsInFlight, async (document) => {
          const jobId = await target.submit(document);
          jobIds.push(jobId);
          return target.wait(jobId);
        });
      } else {
        // The corpus is handed over as fast as the uploads go; the jobs queue durably and the worker
        // works through them at its own concurrency.
        jobIds = await mapBounded(documents, concurrency, (document) => target.submit(document));
        progresses = await Promise.all(jobIds.map((jobId) => target.wait(jobId)));
      }
      const seconds = (performance.now() - started) / 1000;
      // All threads of this process: API, worker, workflow thread, embedding thread.
      const cpu = process.cpuUsage(cpuBefore);
      const cairnCpuSeconds = round((cpu.user + cpu.system) / 1e6);
      const mainCpuAfter = mainCpuBefore === undefined ? undefined : mainThreadCpuSeconds();
      const mainThreadCpu = mainCpuBefore !== undefined && mainCpuAfter !== undefined ? round(mainCpuAfter - mainCpuBefore) : null;
      const busyAfter = modelMs(target.embedder, 'busyMs');
      const modelCpuAfter = modelMs(target.embedder, 'cpuMs');
      const modelBusy = busyBefore !== undefined && busyAfter !== undefined ? round((busyAfter - busyBefore) / 1000 / seconds, 3) : undefined;
      await stopProfile();
      const esCpuAfter = target.es ? await elasticsearchCpuSeconds(target.es) : undefined;
      const esCpuSeconds = esCpuBefore !== undefined && esCpuAfter !== undefined ? round(esCpuAfter - esCpuBefore) : null;
      const temporalCpuAfter = temporalCpuBefore === undefined ? undefined : localTemporalCpuSeconds(config);
      const temporalCpuSeconds = temporalCpuBefore !== undefined && temporalCpuAfter !== undefined ? round(temporalCpuAfter - temporalCpuBefore) : null;
      requests?.stop();
      embeddings?.stop();
      const esWork = target.es ? await indexWork(target.es, config.ELASTICSEARCH_INDEX_PREFIX) : undefined;
      const esRequests = requests ? Object.fromEntries([...requests.counts].sort(([, a], [, b]) => b - a)) : undefined;
      const load = [round(loadBefore), round(os.loadavg()[0]!)];

      const failed = progresses.filter((progress) => progress.status !== 'completed');
      if (failed.length) throw new Error(`${failed.length} jobs did not complete: ${JSON.stringify(failed[0]!.errors)}`);
      const chunks = progresses.reduce((n, progress) => n + progress.counts.chunks, 0);
      const memories = progresses.reduce((n, progress) => n + progress.memories_created, 0);
      const entities = progresses.reduce((n, progress) => n + progress.counts.entities, 0);
      const stageMs = meanStageMs(progresses);
      const pipeline = { docs_per_s: round(docs / seconds), chunks_per_s: round(chunks / seconds) };
      // When the first job of the burst was done: how long the first caller waited while the rest queued.
      const finishedAt = progresses.map((progress) => Date.parse(progress.finished_at ?? '')).filter(Number.isFinite);
      const firstJobS = finishedAt.length ? round((Math.min(...finishedAt) - startedAt) / 1000) : null;
      log(`pipeline: ${docs} docs, ${chunks} chunks, ${memories} memories, ${entities} entity resolutions in ${seconds.toFixed(2)} s → ${pipeline.docs_per_s} docs/s, ${pipeline.chunks_per_s} chunks/s; first job done after ${firstJobS ?? 'n/a'} s`);
      log(`cpu during the run: this process ${cairnCpuSeconds} s, Elasticsearch ${esCpuSeconds ?? 'n/a'} s (shared node), Temporal ${temporalCpuSeconds ?? 'n/a'} s; ` +
        `machine load ${load[0]} → ${load[1]} on ${os.availableParallelism()} cores`);
      if (esRequests) log(`Elasticsearch requests: ${Object.entries(esRequests).map(([endpoint, count]) => `${endpoint} ${count}`).join(', ')}`);
      if (modelBusy !== undefined) log(`embedding model busy ${Math.round(modelBusy * 100)}% of the run (idle time there is time the pipeline made it wait)`);
      if (embeddings) log(`embedding model calls during the run: ${embeddings.calls}, ${embeddings.texts} texts (${embeddings.distinct.size} distinct)`);
      if (esWork) log(`Elasticsearch work on the bench's indices (incl. warm-up and earlier rounds): ${Object.entries(esWork).map(([index, work]) => `${index} ${JSON.stringify(work)}`).join('; ')}`);
      log(`mean per-job stage time (ms): ${STAGES.map((stage) => `${stage} ${stageMs[stage]}`).join(', ')}`);
      let activityMs: Record<string, { queued_ms: number; running_ms: number }> | undefined;
      if (target.history) {
        const totals = new Map<string, { queued: number; running: number; count: number }>();
        let localRuns = 0;
        for (const jobId of jobIds) {
          const events = await target.history(jobId);
          // A local activity leaves a marker, not scheduled/started events: it is never queued on the server.
          localRuns += events.filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;
          for (const [name, entry] of activityTimings(events)) {
            const total = totals.get(name) ?? { queued: 0, running: 0, count: 0 };
            totals.set(name, { queued: total.queued + entry.queued, running: total.running + entry.running, count: total.count + entry.count });
          }
        }
        activityMs = Object.fromEntries(
          [...totals].map(([name, total]) => [name, { queued_ms: round(total.queued / total.count, 1), running_ms: round(total.running / total.count, 1) }]),
        );
        const regular = Object.entries(activityMs).map(([name, t]) => `${name} ${t.queued_ms}/${t.running_ms}`).join(', ');
        log(`mean per-activity time (ms, queued/running): ${regular || 'no regular activity ran'}; ${localRuns} local activity runs (inside their workflow tasks, not queued)`);
      }

      let embedderChunksPerS: number | null = null;
      let embedderCpuSeconds: number | null = null;
      let embedderRuns: number[] | null = null;
      let embedderSeconds: number | null = null;
      if (!alone) {
        log('embedder: none configured (memories are stored without vectors); overhead_ratio cannot be computed');
      } else {
        const after = await alone.run();
        // The faster of the two runs: the machine is shared, and a busy moment in either would flatter the ratio.
        const best = after.seconds < before!.seconds ? after : before!;
        embedderRuns = [round(before!.seconds), round(after.seconds)];
        embedderCpuSeconds = best.cpuSeconds;
        embedderSeconds = best.seconds;
        embedderChunksPerS = round(alone.texts.length / best.seconds);
        log(`embedder alone (${target.embedder!.model}): ${alone.texts.length} chunks in ${before!.seconds.toFixed(2)} s before the pipeline, ` +
          `${after.seconds.toFixed(2)} s after (cpu ${embedderCpuSeconds} s) → ${embedderChunksPerS} chunks/s`);
        before = after; // and the next round's run before its pipeline
      }
      const overheadRatio = embedderChunksPerS ? round(pipeline.chunks_per_s / embedderChunksPerS, 3) : null;
      log(`overhead_ratio (pipeline chunks/s ÷ embedder chunks/s): ${overheadRatio ?? 'n/a'}`);
      // When the services share the machine, the pipeline can go no faster than all its CPU work spread
      // over every core: at this run's CPU cost, the ratio cannot exceed (embedder-alone seconds × cores)
      // ÷ (CPU seconds of this process, Elasticsearch and Temporal). Past that, only less CPU work helps.
      const cpuSeen = cairnCpuSeconds + (esCpuSeconds ?? 0) + (temporalCpuSeconds ?? 0);
      const cpuBoundCeiling = embedderSeconds !== null && target.es ? round((embedderSeconds * os.availableParallelism()) / cpuSeen, 3) : null;
      // The same with only this process's CPU on these cores, as when Elasticsearch and Temporal run on
      // other machines (in process only: against CAIRN_URL this process is the load generator).
      const processOnlyCeiling = cpuBoundCeiling !== null && !process.env.CAIRN_URL ? round((embedderSeconds! * os.availableParallelism()) / cairnCpuSeconds, 3) : null;
      if (cpuBoundCeiling !== null) {
        log(`cpu-bound ceiling of overhead_ratio at this run's CPU cost (${round(cpuSeen)} CPU-s on ${os.availableParallelism()} cores): ${cpuBoundCeiling}` +
          (processOnlyCeiling !== null ? `; ${processOnlyCeiling} counting this process alone (Elasticsearch and Temporal on other machines)` : ''));
      }
      // The model's own CPU (its threads) against everything else the run cost: the orchestration's
      // price in CPU-s, which a faster or slower model does not change (the ratio moves with both).
      const modelCpuSeconds = modelCpuBefore !== undefined && modelCpuAfter !== undefined ? round((modelCpuAfter - modelCpuBefore) / 1000) : null;
      const outsideModelCpuSeconds = modelCpuSeconds !== null && target.es ? round(cpuSeen - modelCpuSeconds) : null;
      // This process's share of it: the main thread (API, activities) and the rest of its threads.
      const otherThreadsCpu = mainThreadCpu !== null && modelCpuSeconds !== null ? round(cairnCpuSeconds - modelCpuSeconds - mainThreadCpu) : null;
      if (outsideModelCpuSeconds !== null) {
        // At this model cost, overhead_ratio 0.8 leaves (embedder-alone seconds ÷ 0.8) × cores CPU-s for the whole run.
        const budget = embedderSeconds !== null ? round((embedderSeconds * os.availableParallelism()) / 0.8 - modelCpuSeconds!) : null;
        log(`cpu outside the model: ${outsideModelCpuSeconds} CPU-s (${round((outsideModelCpuSeconds * 1000) / chunks, 1)} ms a chunk); the model's threads ${modelCpuSeconds} CPU-s` +
          (budget !== null ? `; overhead_ratio 0.8 at this model cost would leave ${budget} CPU-s outside it` : ''));
        if (otherThreadsCpu !== null) {
          log(`  of which: this process's main thread (API, activities) ${mainThreadCpu} CPU-s, its other threads (Temporal's workflow thread and core, ` +
            `V8's compiler and GC helpers, libuv) ${otherThreadsCpu}, Elasticsearch ${esCpuSeconds ?? 'n/a'}, Temporal's server ${temporalCpuSeconds ?? 'n/a'}`);
        }
      }
      rounds.push(
          {
            docs,
            warmup_docs: warmDocs,
            chunks,
            memories,
            entity_resolutions: entities,
            seconds: round(seconds),
            ...pipeline,
            first_job_s: firstJobS,
            embedder: target.embedder?.model ?? null,
            embedder_chunks_per_s: embedderChunksPerS,
            overhead_ratio: overheadRatio,
            cairn_cpu_s: cairnCpuSeconds,
            embedder_cpu_s: embedderCpuSeconds,
            embedder_runs_s: embedderRuns,
            es_cpu_s: esCpuSeconds,
            temporal_cpu_s: temporalCpuSeconds,
            cpu_bound_ceiling: cpuBoundCeiling,
            cpu_bound_ceiling_process_only: processOnlyCeiling,
            model_cpu_s: modelCpuSeconds,
            outside_model_cpu_s: outsideModelCpuSeconds,
            main_thread_cpu_s: mainThreadCpu,
            other_threads_cpu_s: otherThreadsCpu,
            es_requests: esRequests,
            es_index_work: esWork,
            model_busy_fraction: modelBusy,
            embedded_texts: embeddings ? { calls: embeddings.calls, texts: embeddings.texts, distinct: embeddings.distinct.size } : undefined,
            load_avg: load,
            stage_ms_mean: stageMs,
            activity_ms_mean: activityMs,
            batch_size: batchSize,
            batch_concurrency: batchConcurrency,
            upload_concurrency: concurrency,
            jobs_in_flight: jobsInFlight > 0 ? jobsInFlight : null,
            // Epoch milliseconds of the timed pipeline run, to line it up with outside CPU samplers.
            window_ms: [startedAt, startedAt + Math.round(seconds * 1000)],
          },
      );
    }
    if (repeat > 1) {
      const ratios = rounds.map((run) => run.overhead_ratio);
      log(`overhead_ratio over ${repeat} rounds: ${ratios.join(', ')}; median ${median(ratios) ?? 'n/a'}`);
    }
    if (json) {
      // The round with the median ratio, and every round's ratio beside it.
      const ranked = [...rounds].sort((a, b) => (a.overhead_ratio ?? 0) - (b.overhead_ratio ?? 0));
      const middle = ranked[Math.floor((ranked.length - 1) / 2)]!;
      console.log(JSON.stringify({ ...middle, repeat, overhead_ratio_runs: rounds.map((run) => run.overhead_ratio) }));
    }
  } finally {
    await target.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
