import { Context } from '@temporalio/activity';
import { startHarness, type Harness } from './support/harness';

/**
 * A Tex write whose active-fragment activity wrote its fragments and then failed before its completion
 * was recorded (a worker or the Temporal server gone at that moment; here a fault injected after the
 * real write, not a test double) is retried: the retry must still hand the turns to the passive
 * stages, not find the fragments stored and complete the job with no enrichment.
 */
describe('a Tex write whose active write is retried after it stored the fragments', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      wrapActivities: (activities) => ({
        ...activities,
        writeActiveFragments: async (input) => {
          const result = await activities.writeActiveFragments(input);
          if (Context.current().info.attempt === 1) throw new Error('the connection dropped before the completion was recorded');
          return result;
        },
      }),
    });
  });
  afterAll(async () => h?.close());

  it('still runs the passive enrichment over the turns', async () => {
    const write = await h.api('POST', '/compat/tex/ingestion/memory', {
      body: {
        scope: { org_id: 'org_1', user_id: 'user_1', session_id: 'retried-1' },
        turns: [
          { role: 'user', text: 'My daughter Ines starts school in Lisbon next September.', timestamp: '2026-05-08T14:00:00Z' },
          { role: 'assistant', text: 'I will remember that.', timestamp: '2026-05-08T14:00:01Z' },
        ],
      },
    });
    expect(write.status).toBe(202);
    expect(write.body.active_fragment_ids).toHaveLength(2);
    expect(write.body.passive_job_id).toBe(write.body.job_id);
    const done = await h.waitForJob('acme', write.body.job_id);
    expect(done.status).toBe('completed');
    expect(done.stages.extract.state).toBe('completed');
    expect(done.memories_created).toBeGreaterThan(0);
  });
});
