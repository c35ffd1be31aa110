import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ContinueAsNew,
  ParentClosePolicy,
  isCancellation,
  continueAsNew,
  defineQuery,
  executeChild,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/registry';
import type { ChildIngest } from '../activities/backfill-ingest';
import type { BatchOutcome } from '../activities/backfill-reembed';
import { MAX_KEPT_ERRORS } from '../lib/backfill/limits';
import type { BackfillCarried, BackfillProgress, BackfillWorkflowInput, ReindexPlan, ScanState } from '../lib/backfill/request';
import { ingestJobAttributes } from '../lib/temporal/search-attributes';
import { mapBounded } from '../lib/map-bounded';
import { ingestWorkflow } from './ingest';
import { failureReason } from './ingest/failures';

export const backfillProgressQuery = defineQuery<BackfillProgress>('backfillProgress');

// Elasticsearch reads and writes retry until the cluster is back; bad input fails the backfill at once.
const { openBackfillScan, nextBackfillPage, closeBackfillScan, listImportSources, ensureBackfillMarker, prepareReindex, swapMemoriesAlias, prepareReextract, prepareImport, dropSupersededMemories } =
  proxyActivities<Activities>({
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
const { removeOldIndexVersions, dropUnswappedTargets } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});
const { reembedMemories, copyMemories, catchUpMemories, copyEntities, catchUpEntities, dropDeletedMemories } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * One backfill run: walk what is stored page by page, process each page in bounded-concurrency
 * batches, and hand over to a fresh run (continue-as-new) before the history grows large. Progress,
 * cursor and the run id travel across hand-overs, so the run handles every item exactly once.
 */
export async function backfillWorkflow(input: BackfillWorkflowInput): Promise<BackfillProgress> {
  // Stable across continue-as-new: the marker that makes a retried batch skip what it already did.
  const runId = input.carried?.runId ?? workflowInfo().firstExecutionRunId;
  const progress = input.carried?.progress ?? initialProgress(input, runId);
  if (input.carried) progress.runs += 1;
  setHandler(backfillProgressQuery, () => progress);
  let reindex = input.carried?.reindex;

  try {
    let scan: ScanState;
    if (input.carried?.scan) scan = input.carried.scan;
    else ({ scan, reindex } = await openWalk(input, runId, progress));
    for (let pages = 0; !scan.done; pages++) {
      if (pages >= input.pagesPerRun || workflowInfo().continueAsNewSuggested) {
        const carried: BackfillCarried = { runId, progress, scan, reindex };
        // The scan state carries the items: the folder and URLs go, the document type they get stays.
        const importSpec = input.importSpec?.documentType ? { documentType: input.importSpec.documentType } : undefined;
        await continueAsNew<typeof backfillWorkflow>({ ...input, importSpec, carried });
      }
      const page = await nextBackfillPage(scan, input.pageSize);
      await processPage(input, runId, page.items, progress, reindex);
      scan = page.state;
      progress.pages += 1;
      touch(progress);
    }
    await closeBackfillScan(scan);
    // The swap and the catch-up after it are one step: a cancel arriving meanwhile waits for the end
    // (stopped half way, the alias would point at an index missing the writes made during the walk).
    if (reindex) await CancellationScope.nonCancellable(() => finishReindex(reindex!, runId, progress));
    progress.status = 'completed';
  } catch (error) {
    // Continue-as-new and cancellation travel as exceptions: they are not this backfill failing.
    if (error instanceof ContinueAsNew) throw error;
    // Only the backfill's own cancellation: an ingest job of it cancelled by a user is a failed item.
    if (isCancellation(error) && stopping()) {
      // Stopped: what it did stays done, and its status says it stopped (a query reads this state).
      progress.status = 'cancelled';
      await dropUnswapped(reindex, progress);
      finish(progress);
      throw error;
    }
    progress.status = 'failed';
    const reason = failureReason(error);
    keepError(progress, { item: progress.phase, message: reason.message });
    await dropUnswapped(reindex, progress);
    finish(progress);
    // The progress goes with the failure, so it is read without a worker (no query needed).
    throw ApplicationFailure.create({ message: reason.message, type: reason.code, nonRetryable: true, details: [progress] });
  }
  finish(progress);
  return progress;
}

async function openWalk(input: BackfillWorkflowInput, runId: string, progress: BackfillProgress): Promise<{ scan: ScanState; reindex?: ReindexPlan }> {
  progress.phase = 'scanning';
  let reindex: ReindexPlan | undefined;
  let scan: ScanState;
  switch (input.kind) {
    case 'reembed':
      await ensureBackfillMarker('reembed');
      scan = await openBackfillScan({ of: 'memories', tenant: input.tenant });
      break;
    case 'reindex':
      // An index holds every tenant's memories: a reindex moves all of them, or the swap would lose some.
      await ensureBackfillMarker();
      reindex = await prepareReindex(new Date().toISOString());
      progress.reindex = { source: reindex.source, target: reindex.target, swapped: false };
      scan = await openBackfillScan({ of: 'memories', index: reindex.source });
      break;
    case 'reextract':
      scan = await openBackfillScan({ of: 'sources', tenant: input.tenant });
      break;
    case 'import':
      scan = await openBackfillScan(await listImportSources(input.tenant, runId, input.importSpec ?? {}));
      break;
  }
  progress.total = scan.total;
  progress.phase = 'processing';
  touch(progress);
  return { scan, reindex };
}

async function processPage(input: BackfillWorkflowInput, runId: string, items: string[], progress: BackfillProgress, reindex?: ReindexPlan) {
  progress.scanned += items.length;
  if (input.kind === 'reembed' || input.kind === 'reindex') {
    const batches = chunk(items, input.batchSize);
    // Since the patch, a cancelled re-embed or reindex lets the batches in flight finish, as items do
    // below: a batch cancelled under it went on writing after the backfill said `cancelled` — for a
    // reindex, into the next version it had just dropped, which the write then created again.
    await runToEnd(patched('finish-batches-on-cancel'), batches, input.concurrency, async (ids) => {
      const outcome: BatchOutcome =
        input.kind === 'reembed'
          ? await reembedMemories({ runId, ids })
          : await copyMemories({ runId, ids, index: reindex!.source, target: reindex!.target });
      progress.processed += outcome.processed;
      progress.skipped += outcome.skipped;
      touch(progress);
    });
    return;
  }
  // Re-extract and import: each item becomes an ordinary ingest job, run as a child workflow. Since the
  // patch, a cancelled backfill lets the items in flight finish, cleanup included (a re-extraction's
  // superseded memories dropped), and stops before the next.
  await runToEnd(patched('finish-items-on-cancel'), items, input.concurrency, (item) => processItem(input, item, progress));
}

/**
 * Runs `work` over items with bounded concurrency; with `finishes` (a patch's decision), once the
 * backfill is stopping no item starts and those in flight run to their end (mapBounded's settle).
 */
function runToEnd<T>(finishes: boolean, items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void[]> {
  return mapBounded(items, concurrency, (item) => {
    if (!finishes) return work(item);
    if (stopping()) throw new CancelledFailure('the backfill was cancelled');
    return CancellationScope.nonCancellable(() => work(item));
  }, { settle: finishes });
}

async function processItem(input: BackfillWorkflowInput, item: string, progress: BackfillProgress) {
  const jobId = uuid4();
  const prepared =
    input.kind === 'reextract'
      ? await prepareReextract(input.tenant, item, jobId)
      : await prepareImport(input.tenant, item, jobId, input.importSpec?.documentType);
  if (!prepared.child) {
    progress.skipped += 1;
    keepError(progress, { item, message: `skipped: ${prepared.skipped}` });
    return;
  }
  try {
    const result = await runIngestJob(prepared.child);
    if (result.errors.length > 0) {
      // Completed with batches left out (ingest revision 3): the old memories of those chunks are
      // all there is of them, so none is dropped; the item counts as failed, saying why.
      progress.failed += 1;
      keepError(progress, { item, message: `partly extracted, earlier memories kept: ${result.errors.map((error) => error.message).join('; ')}` });
      touch(progress);
      return;
    }
    if (input.kind === 'reextract') await dropSupersededMemories(input.tenant, item, jobId, prepared.supersedes);
    progress.processed += 1;
  } catch (error) {
    // A job cancelled by its user is a failed item (the backfill's own cancel never reaches a job
    // in flight: see processPage).
    progress.failed += 1;
    keepError(progress, { item, message: failureReason(error).message });
  }
  touch(progress);
}

/** Whether this backfill itself is being cancelled (not an activity or a child of it). */
function stopping(): boolean {
  return CancellationScope.current().consideredCancelled;
}

function runIngestJob(child: ChildIngest) {
  return executeChild(ingestWorkflow, {
    workflowId: child.workflowId,
    args: [child.input],
    // An ingest job is the tenant's job in its own right: it finishes even if the backfill is stopped —
    // closed, or (since the patch; older histories recorded the cancel requests) cancelled.
    parentClosePolicy: ParentClosePolicy.ABANDON,
    ...(patched('abandon-jobs-on-cancel') ? { cancellationType: ChildWorkflowCancellationType.ABANDON } : {}),
    typedSearchAttributes: ingestJobAttributes(child.attributes),
    memo: child.memo,
  });
}

async function finishReindex(plan: ReindexPlan, runId: string, progress: BackfillProgress) {
  // The entities index holds vectors too: it moves in the same swap, so both change model together.
  const entities: NonNullable<BackfillProgress['reindex']>['entities'] = plan.entities
    ? { source: plan.entities.source, target: plan.entities.target, copied: await copyEntities(plan) }
    : undefined;
  progress.phase = 'swapping';
  await swapMemoriesAlias(plan);
  progress.reindex = { source: plan.source, target: plan.target, swapped: true, entities };
  progress.phase = 'finishing';
  progress.reindex.caught_up = await catchUpMemories({ ...plan, runId });
  progress.reindex.dropped = await dropDeletedMemories({ ...plan, runId });
  if (entities) entities.caught_up = await catchUpEntities(plan);
  // Histories recorded before old versions were removed replay without this step.
  if (patched('remove-old-index-versions')) {
    // Housekeeping: a failure here leaves disk to reclaim by hand, not the reindex undone.
    progress.reindex.removed = await removeOldIndexVersions(plan).catch(() => undefined);
  }
}

/**
 * A reindex stopped before its swap leaves no half-filled index behind (see dropUnswappedTargets); one
 * stopped after it changes nothing. Best effort: the backfill's own outcome is what it reports.
 */
async function dropUnswapped(plan: ReindexPlan | undefined, progress: BackfillProgress): Promise<void> {
  if (!plan || progress.reindex?.swapped || !patched('drop-unswapped-reindex')) return;
  const dropped = await CancellationScope.nonCancellable(() => dropUnswappedTargets(plan)).catch(() => undefined);
  if (dropped && progress.reindex) progress.reindex.removed = dropped;
}

function initialProgress(input: BackfillWorkflowInput, runId: string): BackfillProgress {
  const now = new Date().toISOString();
  return {
    run_id: runId,
    kind: input.kind,
    tenant: input.tenant,
    status: 'running',
    phase: 'scanning',
    total: 0,
    scanned: 0,
    processed: 0,
    skipped: 0,
    failed: 0,
    pages: 0,
    runs: 1,
    errors: [],
    started_at: now,
    updated_at: now,
  };
}

function touch(progress: BackfillProgress) {
  progress.updated_at = new Date().toISOString();
}

function finish(progress: BackfillProgress) {
  progress.phase = 'done';
  progress.finished_at = new Date().toISOString();
  progress.updated_at = progress.finished_at;
}

function keepError(progress: BackfillProgress, error: BackfillProgress['errors'][number]) {
  if (progress.errors.length < MAX_KEPT_ERRORS) progress.errors.push(error);
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
