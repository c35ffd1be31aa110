import { Command } from 'commander';
import { SCOPE_VALUE_FIELDS } from '../lib/search/filters';
import { ApiError, type CairnClient } from './client';
import { asJson, client, count, print, program, seconds } from './program';

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

/** `scopes` and `forget`: what a scope holds, and deleting all of it. */
export function addScopeCommands(): void {
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
