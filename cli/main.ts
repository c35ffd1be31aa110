#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { BACKFILL_KINDS } from '../lib/backfill/request';
import { IMPORT_FORMATS } from '../lib/backfill/import-sources';
import { DOCUMENT_TYPES } from '../lib/domain/ingest';
import { SCOPE_VALUE_FIELDS } from '../lib/search/filters';
import { ApiError, CairnClient, Interrupted } from './client';
import { ingestTargets, runIngest, succeeded } from './ingest';

/** `cairn`: ingest, follow jobs, search, delete sources, forget users and run backfills against a Cairn API. */
const program = new Command()
  .name('cairn')
  .description('Command line for a Cairn memory service (talks to its HTTP API)')
  .option('--url <url>', 'Cairn API base URL', process.env.CAIRN_URL ?? 'http://127.0.0.1:8080')
  // No default value here: commander prints defaults in --help, and this one is a secret.
  .option('--key <key>', 'API key (default: $CAIRN_API_KEY)')
  .option('--json', 'print raw JSON answers')
  .option('--timeout <seconds>', 'give up a request the API has not answered in this long', seconds, 120);

/** Ctrl-C: requests in flight are abandoned and each command says what it leaves (a second one kills at once). */
const interruption = new AbortController();
process.once('SIGINT', () => interruption.abort());

const client = () => {
  const { url, key, timeout } = program.opts<{ url: string; key?: string; timeout: number }>();
  return new CairnClient({ url, key: key ?? process.env.CAIRN_API_KEY, timeoutMs: timeout * 1000, signal: interruption.signal, onRetry: (message) => console.error(message) });
};
const asJson = () => Boolean(program.opts().json);
const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));
const READABLE = Object.keys(IMPORT_FORMATS).join(' ');
const INTERRUPTED_EXIT = 130;

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

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The scope options `forget` and `scopes` take: each a filter of the same name. */
function withScopeOptions(command: Command): Command {
  return command
    .option('--user-id <id>', 'scope: this user')
    .option('--agent-id <id>', 'scope: this agent')
    .option('--session-id <id>', 'scope: this session')
    .option('--org-id <id>', 'scope: this organisation')
    .option('--customer-id <id>', 'scope: this customer')
    .option('--space-id <id>', 'scope: this space')
    .option('--container-tag <tag>', 'scope: this container tag (repeatable)', collect);
}

function scopeFilters(options: Record<string, unknown>) {
  return {
    user_id: options.userId as string | undefined,
    agent_id: options.agentId as string | undefined,
    session_id: options.sessionId as string | undefined,
    org_id: options.orgId as string | undefined,
    customer_id: options.customerId as string | undefined,
    space_id: options.spaceId as string | undefined,
    container_tags: options.containerTag as string[] | undefined,
  };
}

withScopeOptions(
  program
    .command('scopes')
    .description("list the values a scope field takes, with memory and source counts: the tenant's users, a user's sessions (scopes session_id --user-id <id>), …")
    .addArgument(new Command().createArgument('<field>', 'scope field').choices([...SCOPE_VALUE_FIELDS])),
)
  .option('--limit <n>', 'at most this many values', count, 1000)
  .action(async (field: string, options: Record<string, unknown> & { limit: number }) => {
    const api = client();
    const values: { value: string; memory_count: number; source_count: number; last_memory_at: string | null }[] = [];
    let pageToken: string | undefined;
    do {
      const page = await api.request('POST', '/v1/scopes/list', { field, filters: scopeFilters(options), page_size: Math.min(100, options.limit - values.length), page_token: pageToken });
      values.push(...page.values);
      pageToken = page.next_page_token ?? undefined;
    } while (pageToken && values.length < options.limit);
    if (asJson()) return print(values);
    if (values.length === 0) console.log(`no ${field} values${Object.values(scopeFilters(options)).some((value) => value !== undefined) ? ' match these filters' : ''}`);
    for (const entry of values) console.log(`${entry.value}  ${entry.memory_count} memories from ${entry.source_count} sources, last ${entry.last_memory_at ?? '-'}`);
  });

withScopeOptions(
  program.command('forget').description('delete every source of a user, agent or session (or by document or source id) with all derived from it'),
)
  .option('--document-id <id>', 'the sources of this document id (repeatable)', collect)
  .option('--source-id <id>', 'this source (repeatable)', collect)
  .option('--wait <seconds>', 'wait up to this long for the jobs still running on matching sources to end, then delete those too', seconds)
  .action(async (options: Record<string, unknown> & { wait?: number }) => {
    const filters = { ...scopeFilters(options), document_ids: options.documentId as string[] | undefined, source_ids: options.sourceId as string[] | undefined };
    if (Object.values(filters).every((value) => value === undefined)) throw new Error('name whom to forget: --user-id, --agent-id, --session-id, … (see --help)');
    const api = client();
    const deadline = Date.now() + (options.wait ?? 0) * 1000;
    // The API deletes up to 500 sources a call and says how many still match: called until only
    // sources with a job still running remain. Those are reported, or with --wait waited for (each
    // job polled until it has ended) and then deleted in turn.
    const total = { sources_deleted: 0, memories_deleted: 0, entities_deleted: 0, entities_updated: 0, jobs_cleared: 0 };
    let answer;
    for (;;) {
      do {
        answer = await api.request('POST', '/v1/sources/delete', { filters });
        for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += answer[key];
      } while (answer.sources_deleted > 0 && answer.remaining > answer.refused.length);
      const running: string[] = answer.refused.flatMap((refused: { open_job_ids: string[] }) => refused.open_job_ids);
      if (running.length === 0 || Date.now() >= deadline) break;
      if (!asJson()) console.error(`waiting for ${running.length} running job${running.length === 1 ? '' : 's'}…`);
      if (!(await jobsEnded(api, running, deadline))) break;
    }
    const result = { ...total, refused: answer.refused, remaining: answer.remaining };
    if (answer.refused.length > 0) process.exitCode = 1;
    if (asJson()) return print(result);
    console.log(`deleted ${total.sources_deleted} sources, ${total.memories_deleted} memories, ${total.entities_deleted} entities`);
    for (const refused of answer.refused) console.log(`  left ${refused.source_id}: job ${refused.open_job_ids.join(', ')} still running (cancel it or wait, then run forget again)`);
  });

function count(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('a whole number, 1 or more');
  return parsed;
}

function seconds(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('a number of seconds');
  return parsed;
}

/** Polls the jobs until none is queued or running, or the deadline passes (then false). */
async function jobsEnded(api: CairnClient, jobIds: string[], deadline: number): Promise<boolean> {
  let open = jobIds;
  while (open.length > 0) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // A job no longer found (its tenant's history cleared) has ended too.
    const statuses = await Promise.all(
      open.map((id) => api.request('GET', `/v1/jobs/${encodeURIComponent(id)}`).then(
        (job) => job.status as string,
        (error: unknown) => {
          if (error instanceof ApiError && error.status === 404) return 'gone';
          throw error;
        },
      )),
    );
    open = open.filter((_, i) => statuses[i] === 'queued' || statuses[i] === 'running');
  }
  return true;
}

program.parseAsync().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(exitCodeOf(error instanceof Error && error.cause instanceof Error ? error.cause : error));
});

function exitCodeOf(error: unknown): number {
  if (error instanceof Interrupted) return INTERRUPTED_EXIT;
  return error instanceof ApiError && error.status === 0 ? 3 : 1;
}
