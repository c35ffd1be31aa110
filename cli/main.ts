#!/usr/bin/env node
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { BACKFILL_KINDS } from '../lib/backfill/request';
import { IMPORT_FORMATS } from '../lib/backfill/import-sources';
import { DOCUMENT_TYPES } from '../lib/domain/ingest';
import { ApiError, Interrupted } from './client';
import { ingestTargets, runIngest, succeeded } from './ingest';
import { asJson, client, count, interruption, INTERRUPTED_EXIT, print, program } from './program';
import { addScopeCommands } from './scopes';

const READABLE = Object.keys(IMPORT_FORMATS).join(' ');

program
  .command('ingest')
  .description('ingest files, folders (every supported file inside) or http(s) URLs')
  .argument('<sources...>', 'paths or URLs')
  .addOption(new Option('--document-type <type>', 'document type').choices(DOCUMENT_TYPES))
  .option('--no-wait', 'return once the jobs are accepted')
  .action(async (sources: string[], options: { documentType?: string; wait: boolean }) => {
    const { targets, skipped } = await ingestTargets(sources, options);
    if (skipped.length > 0) console.error(`skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} not named ${READABLE}: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''}`);
    if (targets.length === 0) throw new Error(`nothing to ingest: no file named ${READABLE} found`);
    const outcomes = await runIngest(client(), targets, { wait: options.wait, quiet: asJson(), signal: interruption.signal });
    const unsuccessful = outcomes.filter((outcome) => !succeeded(outcome, options.wait));
    // Set before printing in either form: --json exits non-zero on a failure too.
    if (unsuccessful.length > 0) process.exitCode = interruption.signal.aborted ? INTERRUPTED_EXIT : 1;
    if (asJson()) print(outcomes);
    else {
      for (const outcome of outcomes) {
        const detail = outcome.error ? ` — ${outcome.error}` : outcome.memories !== undefined ? ` — ${outcome.memories} memories` : '';
        console.log(`${outcome.status.padEnd(11)} ${outcome.jobId ?? '-'.padEnd(36)} ${outcome.label}${detail}`);
      }
    }
    if (unsuccessful.length > 0) console.error(`${unsuccessful.length} of ${outcomes.length} not ${options.wait ? 'ingested' : 'accepted'}${interruption.signal.aborted ? ' (interrupted)' : ''}`);
  });

program
  .command('job')
  .description('show a job: status, stages, counts, errors')
  .argument('<id>', 'job id, as ingest printed it')
  .action(async (id: string) => {
    const job = await client().request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    if (asJson()) return print(job);
    console.log(`${job.job_id}  ${job.status}  ${job.memories_created ?? 0} memories  (${job.format}, ${job.kind})`);
    for (const [stage, state] of Object.entries<{ state: string; duration_ms?: number; count?: number }>(job.stages ?? {})) {
      console.log(`  ${stage.padEnd(17)} ${state.state.padEnd(10)} ${state.duration_ms !== undefined ? `${state.duration_ms} ms` : ''}${state.count !== undefined ? `  count ${state.count}` : ''}`);
    }
    for (const error of job.errors ?? []) console.log(`  error in ${error.stage}: ${error.message}`);
  });

program
  .command('search')
  .description('hybrid search over your memories')
  .argument('<query...>', 'words to search for')
  .addOption(new Option('--mode <mode>', 'retrieval mode').choices(['hybrid', 'bm25', 'knn']).default('hybrid'))
  .option('-k, --top-k <n>', 'how many results', count, 10)
  .action(async (words: string[], options: { mode: string; topK: number }) => {
    const answer = await client().request('POST', '/v1/search', { query: words.join(' '), mode: options.mode, top_k: options.topK });
    if (asJson()) return print(answer);
    for (const result of answer.results ?? []) {
      console.log(`${Number(result.score ?? 0).toFixed(4)}  [${result.type ?? result.memory?.type ?? ''}] ${result.text ?? result.memory?.text ?? JSON.stringify(result)}`);
    }
  });

program
  .command('backfill')
  .description(`start a backfill now and follow it: ${BACKFILL_KINDS.join(', ')}`)
  .addArgument(new Command().createArgument('<kind>', 'what to backfill').choices(BACKFILL_KINDS))
  .option('--folder <path>', 'import: folder under the worker\'s import root for your tenant')
  .option('--import-url <url...>', 'import: URLs to ingest (the global --url is the API\'s)')
  .option('--batch-size <n>', 'items per batch', count)
  .option('--concurrency <n>', 'batches at once', count)
  .option('--no-wait', 'return once the backfill has started')
  .action(async (kind: string, options: { folder?: string; importUrl?: string[]; batchSize?: number; concurrency?: number; wait: boolean }) => {
    const api = client();
    const started = await api.request('POST', '/v1/backfills', {
      backfill: kind,
      folder: options.folder,
      urls: options.importUrl,
      batch_size: options.batchSize,
      concurrency: options.concurrency,
    });
    if (!options.wait) return asJson() ? print(started) : console.log(`backfill ${started.id} started`);
    const bar = asJson() ? undefined : new SingleBar({ format: ` ${kind} {bar} {value}/{total} | {phase}`, hideCursor: true }, Presets.shades_classic);
    bar?.start(1, 0, { phase: 'scanning' });
    let progress;
    try {
      for (;;) {
        progress = await api.request('GET', `/v1/backfills/${started.id}`);
        bar?.setTotal(Math.max(1, progress.total));
        bar?.update(progress.scanned, { phase: progress.phase });
        if (progress.status !== 'running') break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } catch (error) {
      // The backfill goes on without us: say which, and how to find it again.
      throw new Error(`${(error as Error).message}; backfill ${started.id} goes on in Cairn (GET /v1/backfills/${started.id} follows it, POST /v1/backfills/${started.id}/cancel stops it)`, { cause: error });
    } finally {
      bar?.stop();
    }
    // A backfill that did not complete, or completed with items that failed, exits 1, as an ingest with a failed job does.
    if (progress.status !== 'completed' || progress.failed > 0) process.exitCode = 1;
    if (asJson()) return print(progress);
    console.log(`backfill ${started.id} ${progress.status}: ${progress.processed} processed, ${progress.skipped} skipped, ${progress.failed} failed`);
    for (const error of progress.errors ?? []) console.log(`  ${error.item}: ${error.message}`);
  });

const schedules = program.command('schedule').description('backfills on a Temporal Schedule');
schedules
  .command('create')
  .description('create a schedule that starts this backfill every interval (or on a cron expression); prints it as JSON')
  .addArgument(new Command().createArgument('<kind>', 'what to backfill').choices(BACKFILL_KINDS))
  .option('--every <interval>', 'e.g. 24h, 30m, 7d')
  .option('--cron <expression>', 'a cron expression instead of --every')
  .option('--folder <path>', 'import: folder under the import root')
  .option('--paused', 'create it paused')
  .action(async (kind: string, options: { every?: string; cron?: string; folder?: string; paused?: boolean }) => {
    print(await client().request('POST', '/v1/schedules', { backfill: kind, every: options.every, cron: options.cron, folder: options.folder, paused: options.paused }));
  });
schedules.command('list').description('list the schedules, with their recent runs, as JSON').action(async () => print(await client().request('GET', '/v1/schedules')));
const SCHEDULE_VERBS = {
  pause: 'pause a schedule: it starts nothing until unpaused; prints it as JSON',
  unpause: 'unpause a schedule; prints it as JSON',
  trigger: 'start a schedule\'s backfill now, whatever its interval',
} as const;
for (const [verb, description] of Object.entries(SCHEDULE_VERBS)) {
  schedules
    .command(verb)
    .description(description)
    .argument('<id>', 'schedule id (sch_…)')
    .action(async (id: string) => print(await client().request('POST', `/v1/schedules/${encodeURIComponent(id)}/${verb}`, {})));
}
schedules
  .command('delete')
  .description('delete a schedule (backfills it started are left alone)')
  .argument('<id>', 'schedule id (sch_…)')
  .action(async (id: string) => {
    await client().request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
    if (asJson()) return print({ id, deleted: true });
    console.log(`schedule ${id} deleted`);
  });

const sources = program.command('source').description('what was sent (a memory\'s provenance.source_id), shown or deleted with all derived from it');
sources
  .command('show')
  .description('show a source: its kind, format, memory count, document id and title')
  .argument('<id>', 'source id (src_…)')
  .action(async (id: string) => {
    const source = await client().request('GET', `/v1/sources/${encodeURIComponent(id)}`);
    if (asJson()) return print(source);
    console.log(`${source.id}  ${source.kind ?? ''} ${source.format ?? ''}  ${source.memory_count} memories${source.document_id ? `  document_id ${source.document_id}` : ''}${source.title ? `  "${source.title}"` : ''}`);
  });
sources
  .command('delete')
  .description('delete a source with its memories, entity mentions and stored content')
  .argument('<id>', 'source id (src_…)')
  .action(async (id: string) => {
    const deleted = await client().request('DELETE', `/v1/sources/${encodeURIComponent(id)}`);
    if (asJson()) return print(deleted);
    console.log(`source ${id} deleted: ${deleted.memories_deleted} memories, ${deleted.entities_deleted} entities (${deleted.entities_updated} others no longer name it)`);
  });

program
  .command('erase-tenant')
  .description("erase a tenant's data whole: its sources with their memories and uploads, entities, spaces, webhooks, job summaries, minted keys and schedules (the operator key, or the tenant's own admin key)")
  .argument('<tenant>', 'tenant to erase')
  .requiredOption('--confirm <tenant>', 'the tenant named again: nothing is erased unless both agree')
  .action(async (tenant: string, options: { confirm: string }) => {
    const erased = await client().request('DELETE', `/v1/admin/tenants/${encodeURIComponent(tenant)}?confirm=${encodeURIComponent(options.confirm)}`);
    if (asJson()) return print(erased);
    console.log(`tenant ${tenant} erased: ${erased.sources_deleted} sources, ${erased.memories_deleted} memories, ${erased.entities_deleted} entities, ${erased.job_summaries_deleted} job summaries, ${erased.keys_deleted} keys, ${erased.webhooks_deleted} webhooks, ${erased.spaces_deleted} spaces, ${erased.schedules_deleted} schedules`);
  });


addScopeCommands();

program.parseAsync().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(exitCodeOf(error instanceof Error && error.cause instanceof Error ? error.cause : error));
});

function exitCodeOf(error: unknown): number {
  if (error instanceof Interrupted) return INTERRUPTED_EXIT;
  return error instanceof ApiError && error.status === 0 ? 3 : 1;
}
