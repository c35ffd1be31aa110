import { ScheduleNotFoundError } from '@temporalio/client';
import { backfillScheduleId } from '../lib/backfill/ids';
import { startHarness, type Harness } from './support/harness';

/** Temporal's schedule listing is eventually consistent: wait until it agrees. */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('backfill schedules through the API are real Temporal Schedules, per tenant', () => {
  let h: Harness;
  const created: string[] = [];
  const temporalIds = async () => {
    const ids: string[] = [];
    for await (const schedule of h.temporal.client.schedule.list()) ids.push(schedule.scheduleId);
    return ids;
  };

  /** While set, a backfill's scan waits for it: a scheduled run still going. */
  let holdScan: Promise<void> | undefined;
  beforeAll(async () => {
    h = await startHarness({
      wrapActivities: (activities) => ({
        ...activities,
        openBackfillScan: async (...args: Parameters<typeof activities.openBackfillScan>) => {
          await holdScan;
          return activities.openBackfillScan(...args);
        },
      }),
    });
  });
  afterAll(async () => {
    for (const id of created) await h.temporal.client.schedule.getHandle(backfillScheduleId('acme', id)).delete().catch(() => undefined);
    await h?.close();
  });

  it('creates a schedule (201 with its id) that Temporal lists, and deletes it so Temporal no longer has it', async () => {
    const response = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', every: '24h' } });
    expect(response.status).toBe(201);
    expect(response.body.id).toMatch(/^sch_[a-f0-9]{16}$/);
    expect(response.body).toMatchObject({ backfill: 'reembed', every: '24h', paused: false });
    expect(Date.parse(response.body.next_run_at)).toBeGreaterThan(Date.now());
    const id = response.body.id as string;
    created.push(id);
    const temporalId = backfillScheduleId('acme', id);

    const description = await h.temporal.client.schedule.getHandle(temporalId).describe();
    expect(description.action.workflowType).toBe('backfillWorkflow');
    expect(description.action.taskQueue).toBe(h.config.TEMPORAL_TASK_QUEUE);
    expect(description.spec.intervals?.[0]?.every).toBe(24 * 3600 * 1000);
    expect(await eventually(temporalIds, (ids) => ids.includes(temporalId))).toContain(temporalId);

    const listed = await eventually(
      () => h.api('GET', '/v1/schedules'),
      (r) => r.body.schedules?.some((s: { id: string }) => s.id === id),
    );
    expect(listed.status).toBe(200);
    expect(listed.body.schedules.map((s: { id: string }) => s.id)).toContain(id);
    // A listing says when each was created, as a single schedule's answer does.
    expect(Date.parse(listed.body.schedules.find((s: { id: string }) => s.id === id).created_at)).toBeGreaterThan(Date.now() - 120_000);
    expect(listed.body.schedules.find((s: { id: string }) => s.id === id).created_at).toBe(response.body.created_at);
    expect((await h.api('GET', `/v1/schedules/${id}`)).body.created_at).toBe(response.body.created_at);

    const deleted = await h.api('DELETE', `/v1/schedules/${id}`);
    expect(deleted.status).toBe(204);
    await expect(h.temporal.client.schedule.getHandle(temporalId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect(await eventually(temporalIds, (ids) => !ids.includes(temporalId))).not.toContain(temporalId);
    expect((await h.api('GET', `/v1/schedules/${id}`)).status).toBe(404);
    expect((await h.api('DELETE', `/v1/schedules/${id}`)).status).toBe(404);
  });

  it('pauses, unpauses and triggers a schedule; the triggered run is a backfill the tenant can poll', async () => {
    const response = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', every: '7d', note: 'weekly re-embed' } });
    expect(response.status).toBe(201);
    const id = response.body.id as string;
    created.push(id);
    const handle = h.temporal.client.schedule.getHandle(backfillScheduleId('acme', id));

    const paused = await h.api('POST', `/v1/schedules/${id}/pause`, { body: { note: 'maintenance' } });
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toBe(true);
    expect((await handle.describe()).state.paused).toBe(true);

    const unpaused = await h.api('POST', `/v1/schedules/${id}/unpause`);
    expect(unpaused.body.paused).toBe(false);
    expect((await handle.describe()).state.paused).toBe(false);

    expect((await h.api('POST', `/v1/schedules/${id}/trigger`)).status).toBe(202);
    const withRun = await eventually(
      () => h.api('GET', `/v1/schedules/${id}`),
      (r) => r.body.recent_runs?.length > 0,
    );
    const run = withRun.body.recent_runs[0];
    expect(run.workflow_id).toMatch(new RegExp(`^backfill/acme/${id}-`));
    const progress = await eventually(
      () => h.api('GET', `/v1/backfills/${run.backfill_id}`),
      (r) => r.body.status === 'completed',
    );
    expect(progress.status).toBe(200);
    expect(progress.body).toMatchObject({ kind: 'reembed', tenant: 'acme', status: 'completed', total: 0 });
  });

  it('keeps tenants apart: another tenant neither lists nor touches the schedule', async () => {
    const response = await h.api('POST', '/v1/schedules', { body: { backfill: 'reextract', cron: '0 3 * * *' } });
    expect(response.status).toBe(201);
    const id = response.body.id as string;
    created.push(id);
    const asGlobex = { key: h.keys.globex };
    const listed = await h.api('GET', '/v1/schedules', asGlobex);
    expect(listed.status).toBe(200);
    expect(listed.body.schedules.map((s: { id: string }) => s.id)).not.toContain(id);
    expect((await h.api('GET', `/v1/schedules/${id}`, asGlobex)).status).toBe(404);
    expect((await h.api('POST', `/v1/schedules/${id}/pause`, asGlobex)).status).toBe(404);
    expect((await h.api('POST', `/v1/schedules/${id}/trigger`, asGlobex)).status).toBe(404);
    expect((await h.api('DELETE', `/v1/schedules/${id}`, asGlobex)).status).toBe(404);
    // Still there for its owner, untouched.
    const mine = await h.api('GET', `/v1/schedules/${id}`);
    expect(mine.status).toBe(200);
    expect(mine.body.paused).toBe(false);
  });

  it('takes named periods and a time zone in cron', async () => {
    for (const cron of ['@daily', 'CRON_TZ=Europe/Lisbon 0 3 * * *']) {
      const response = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', cron, paused: true } });
      expect([cron, response.status]).toEqual([cron, 201]);
      created.push(response.body.id);
      expect((await h.api('DELETE', `/v1/schedules/${response.body.id}`)).status).toBe(204);
    }
  });

  it('answers bad schedule requests with a 400 that names the problem', async () => {
    const cases: [unknown, RegExp][] = [
      [{ backfill: 'reembed' }, /every|cron/],
      [{ backfill: 'reembed', every: '24h', cron: '0 3 * * *' }, /exactly one/],
      [{ backfill: 'reembed', every: 'daily' }, /every/],
      [{ backfill: 'compact', every: '24h' }, /backfill/],
      [{ backfill: 'import', every: '24h' }, /urls|folder/],
      [{ backfill: 'reembed', every: '24h', urls: ['https://example.com/'] }, /import/],
    ];
    for (const [body, message] of cases) {
      const response = await h.api('POST', '/v1/schedules', { body });
      expect([JSON.stringify(body), response.status]).toEqual([JSON.stringify(body), 400]);
      expect(response.body.error.message).toMatch(message);
    }
    expect((await h.api('POST', '/v1/schedules/not-a-schedule/pause')).status).toBe(404);
    expect((await h.api('GET', '/v1/schedules', { key: null })).status).toBe(401);
    // Only the format's problem, not a bound the value was never read against.
    const seconds = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', every: '30s' } });
    expect(seconds.body.error.message).toMatch(/30m, 24h or 7d/);
    expect(seconds.body.error.message).not.toMatch(/a year/);
    // A cron Temporal takes that names no real day would never run: refused, and not left behind.
    const before = (await temporalIds()).length;
    const never = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', cron: '0 3 31 2 *' } });
    expect(never.status).toBe(400);
    expect(never.body.error.message).toMatch(/never comes round/);
    expect((await temporalIds()).length).toBe(before);
  });

  it('shows no next run while paused, and refuses a trigger while its last run still goes, which Temporal would skip in silence', async () => {
    const response = await h.api('POST', '/v1/schedules', { body: { backfill: 'reembed', every: '1h', paused: true } });
    const id = response.body.id as string;
    created.push(id);
    expect(response.body.next_run_at).toBeUndefined();
    expect((await h.api('POST', `/v1/schedules/${id}/unpause`)).body.next_run_at).toEqual(expect.any(String));
    expect((await h.api('POST', `/v1/schedules/${id}/pause`)).body.next_run_at).toBeUndefined();

    let release: () => void = () => undefined;
    holdScan = new Promise<void>((resolve) => (release = resolve));
    try {
      expect((await h.api('POST', `/v1/schedules/${id}/trigger`)).status).toBe(202);
      const running = await eventually(() => h.api('GET', `/v1/schedules/${id}`), (r) => r.body.recent_runs?.length > 0);
      const again = await h.api('POST', `/v1/schedules/${id}/trigger`);
      expect(again.status).toBe(409);
      expect(again.body.error.message).toContain(running.body.recent_runs[0].backfill_id);
    } finally {
      holdScan = undefined;
      release();
    }
  });
});
