import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { INGEST_REVISION } from '../lib/domain/ingest-revision';
import { ingestWorkflowId, newJobId } from '../lib/ids';
import type { IngestWorkflowInput } from '../workflows/ingest';
import { startHarness, type Harness } from './support/harness';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const patchIds = (events: HistoryEvent[]) =>
  events
    .filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((event) => defaultPayloadConverter.fromPayload<{ id: string }>(event.markerRecordedEventAttributes!.details!['patch-data']!.payloads![0]!).id);

/** The CairnStatus value of each UpsertWorkflowSearchAttributes event, in order (other upserts as their keys). */
const upserts = (events: HistoryEvent[]) =>
  events
    .filter((event) => event.upsertWorkflowSearchAttributesEventAttributes)
    .map((event) => {
      const fields = event.upsertWorkflowSearchAttributesEventAttributes!.searchAttributes!.indexedFields!;
      const status = fields.CairnStatus;
      return status ? `CairnStatus=${defaultPayloadConverter.fromPayload<string>(status)}` : Object.keys(fields).join(',');
    });

/**
 * The ingest workflow's behaviour revision travels in each job's input. A job started now carries the
 * current revision and records no patch markers; a job started without one (as an older API started
 * them) still takes the patched path, so histories recorded before stay replayable.
 */
describe('ingest workflow revisions', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  async function historyOf(tenant: string, jobId: string): Promise<HistoryEvent[]> {
    return (await h.jobs.handle(tenant, jobId).fetchHistory()).events ?? [];
  }

  it('a small job started now records no patch marker and one status upsert, at its end', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Ana moved to Porto in March.', format: 'TXT' } });
    expect(accepted.status).toBe(202);
    const progress = await h.waitForJob('acme', accepted.body.job_id);
    expect(progress.status).toBe('completed');
    const events = await historyOf('acme', accepted.body.job_id);
    const input = defaultPayloadConverter.fromPayload<IngestWorkflowInput>(events[0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    expect(input.revision).toBe(INGEST_REVISION);
    expect(patchIds(events)).toEqual([]);
    // It ran in its first workflow task, so 'running' was never visible there and is not upserted.
    expect(upserts(events)).toEqual(['CairnStatus=completed']);
    // The stages still ran as local activities, and the job is listed as completed.
    expect(events.filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity').length).toBeGreaterThan(4);
    const listed = await h.api('GET', '/v1/jobs?status=completed&page_size=100');
    expect(listed.body.jobs.map((job: { job_id: string }) => job.job_id)).toContain(accepted.body.job_id);
  });

  it('a job that hands a stage to the task queue marks itself running first', async () => {
    // Over 200k characters: chunk and extract run as regular activities.
    const content = Array.from({ length: 3000 }, (_, i) => `Line ${i}: Sofia keeps notes about the Lisbon harbour and its ferries.`).join('\n');
    expect(content.length).toBeGreaterThan(200_000);
    const accepted = await h.api('POST', '/v1/documents', { body: { content, format: 'TXT' } });
    expect(accepted.status).toBe(202);
    expect((await h.waitForJob('acme', accepted.body.job_id, 180_000)).status).toBe('completed');
    const events = await historyOf('acme', accepted.body.job_id);
    expect(patchIds(events)).toEqual([]);
    expect(upserts(events)).toEqual(['CairnStatus=running', 'CairnStatus=completed']);
    const firstUpsert = events.findIndex((event) => event.upsertWorkflowSearchAttributesEventAttributes);
    const firstQueued = events.findIndex((event) => event.activityTaskScheduledEventAttributes);
    expect(firstQueued).toBeGreaterThan(firstUpsert);
  });

  it('a job started without a revision takes the patched path older histories recorded', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Rui visited the Faro lighthouse.', format: 'TXT' } });
    await h.waitForJob('acme', accepted.body.job_id);
    const [started] = await historyOf('acme', accepted.body.job_id);
    const current = defaultPayloadConverter.fromPayload<IngestWorkflowInput>(started!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    // The same request as an API from before revisions would have started it.
    const { revision: _revision, ...older } = current;
    const jobId = newJobId();
    const handle = await h.temporal.client.workflow.start('ingestWorkflow', {
      taskQueue: h.config.TEMPORAL_TASK_QUEUE,
      workflowId: ingestWorkflowId('acme', jobId),
      args: [{ ...older, jobId } satisfies IngestWorkflowInput],
    });
    const result = (await handle.result()) as { status: string; memories_created: number };
    expect(result).toMatchObject({ status: 'completed', memories_created: 1 });
    const events = (await handle.fetchHistory()).events ?? [];
    expect(patchIds(events)).toEqual(['local-first-stages', 'local-small-stages']);
    expect(upserts(events)).toEqual(['CairnStatus=running', 'TemporalChangeVersion', 'TemporalChangeVersion', 'CairnStatus=completed']);
  });

  it('a completed job records its source, retires other versions and writes its summary in one activity since revision 8', async () => {
    const accepted = await h.api('POST', '/v1/documents', { body: { content: 'Marta took the ferry to Madeira.', format: 'TXT', document_id: 'rev8-notes' } });
    expect((await h.waitForJob('acme', accepted.body.job_id)).status).toBe('completed');
    const current = await historyOf('acme', accepted.body.job_id);
    expect(localActivities(current).slice(-1)).toEqual(['completeJob']);
    expect(localActivities(current)).not.toContain('recordSource');
    expect(localActivities(current)).not.toContain('recordJobSummary');

    // The same request started at revision 7 replays (and runs) the three activities it recorded.
    const input = defaultPayloadConverter.fromPayload<IngestWorkflowInput>(current[0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    const jobId = newJobId();
    const handle = await h.temporal.client.workflow.start('ingestWorkflow', {
      taskQueue: h.config.TEMPORAL_TASK_QUEUE,
      workflowId: ingestWorkflowId('acme', jobId),
      args: [{ ...input, jobId, revision: 7 } satisfies IngestWorkflowInput],
    });
    expect(await handle.result()).toMatchObject({ status: 'completed', memories_created: 1 });
    const older = (await handle.fetchHistory()).events ?? [];
    expect(localActivities(older).slice(-3)).toEqual(['recordSource', 'retireEarlierVersions', 'recordJobSummary']);
    // Both wrote the source record and their summaries.
    const source = await h.runtime.es.get<{ job_ids: string[] }>({ index: h.runtime.indices.sources, id: input.sourceId });
    expect(source._source!.job_ids).toContain(accepted.body.job_id);
    for (const id of [accepted.body.job_id, jobId]) {
      const summary = await h.runtime.es.get<{ status: string }>({ index: h.runtime.indices.jobs, id: `acme:${id}` });
      expect(summary._source!.status).toBe('completed');
    }
  });
});

/** The local activities a history ran, in order. */
const localActivities = (events: HistoryEvent[]) =>
  events
    .filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity')
    .map((event) => JSON.parse(Buffer.from(event.markerRecordedEventAttributes!.details!.data!.payloads![0]!.data!).toString('utf8')) as { activity_type: string })
    .map((marker) => marker.activity_type);
