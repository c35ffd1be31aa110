import { setTimeout as sleep } from 'node:timers/promises';
import { jobIdMintedAt } from './ids';

/**
 * How long after its id was minted a job Temporal does not know yet is waited for before it is "not
 * found". An API process answers a fresh job once its acceptance journal holds it (accept-journal.ts)
 * and starts it in the background, milliseconds later (a few hundred under load): until then only
 * that process knows the job, and another replica asked for it would answer 404 to a client that
 * was just told 202.
 */
export const FRESH_START_WAIT_MS = 2_000;
/** An id minted further ahead of this process's clock than this is not taken as fresh: no clock is that far off. */
const CLOCK_SKEW_MS = 5_000;

/**
 * For a job id minted in the last FRESH_START_WAIT_MS (a UUIDv7 tells when: lib/ids.ts), asks `probe`
 * again, at growing intervals (7 asks at most), until it finds the job or the id is that old; any
 * other id is not waited for. Only a "not found" is ever delayed, and by at most that long: a made-up
 * fresh id costs its sender two seconds, not the server more than a few lookups.
 */
export async function awaitFreshStart<T>(jobId: string, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const minted = jobIdMintedAt(jobId);
  const asked = Date.now();
  if (minted === undefined || minted > asked + CLOCK_SKEW_MS) return undefined;
  // A replica whose clock is behind the minting one's waits the whole span from now.
  const deadline = Math.min(minted, asked) + FRESH_START_WAIT_MS;
  for (let pause = 25; Date.now() < deadline; pause *= 2) {
    await sleep(Math.min(pause, deadline - Date.now()));
    const found = await probe();
    if (found !== undefined) return found;
  }
  return undefined;
}
