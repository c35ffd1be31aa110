import { CancelledFailure, Context, heartbeat } from '@temporalio/activity';

/**
 * How long an activity runs before it starts heartbeating. Heartbeats exist so Temporal notices a
 * dead worker before the start-to-close timeout; each one is a call to the server and a write of the
 * workflow's state there. Most stage activities of a job finish in well under a second, where a
 * heartbeat only costs the server work, so they heartbeat only once they turn out to be long: 5 s is
 * far inside every stage's heartbeat timeout (30 s at the least).
 */
const QUIET_MS = 5_000;

/**
 * A heartbeat for one activity run that stays silent for its first few seconds. A local activity
 * (a small job's stage) never heartbeats: the workflow task it runs in is what keeps it alive (the
 * SDK extends that task while the activity runs), and the server has no record of it, so each
 * heartbeat would only be refused ("Activity heartbeat failed … UnknownActivity" in the worker's log).
 */
export function livenessHeartbeat(quietMs = QUIET_MS): (details?: unknown) => void {
  if (Context.current().info.isLocal) return () => undefined;
  const started = Date.now();
  return (details) => {
    if (Date.now() - started >= quietMs) heartbeat(details);
  };
}

/**
 * Throws when the activity's cancellation has reached it (a local activity hears at once; a regular
 * one with its next heartbeat's answer), so a write about to start is not made for a cancelled job.
 */
export function stopIfCancelled(): void {
  const signal = Context.current().cancellationSignal;
  if (signal.aborted) throw signal.reason instanceof CancelledFailure ? signal.reason : new CancelledFailure('the job was cancelled');
}
