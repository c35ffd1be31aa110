import { MockActivityEnvironment } from '@temporalio/testing';
import { livenessHeartbeat } from '../activities/liveness';

/** Which activity runs heartbeat: a regular one once it turns out long; a local one never. */
describe('liveness heartbeats', () => {
  async function heartbeatsOf(isLocal: boolean): Promise<unknown[]> {
    const env = new MockActivityEnvironment({ isLocal });
    const sent: unknown[] = [];
    env.on('heartbeat', (details: unknown) => sent.push(details));
    await env.run(async () => {
      const heartbeat = livenessHeartbeat(20);
      heartbeat('early');
      await new Promise((resolve) => setTimeout(resolve, 40));
      heartbeat('late');
    });
    return sent;
  }

  it('a regular activity is silent for its quiet period, then heartbeats', async () => {
    expect(await heartbeatsOf(false)).toEqual(['late']);
  });

  it('a local activity never heartbeats: its workflow task keeps it alive, and the server would refuse it', async () => {
    expect(await heartbeatsOf(true)).toEqual([]);
  });
});
