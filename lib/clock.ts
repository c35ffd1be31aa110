/**
 * When this process accepted something (or a backfill made a new version), as an ISO timestamp that
 * no earlier call of this process matches: a call in the same millisecond as the last (or after the
 * wall clock stepped back) takes the millisecond after it. A replaceable source's version is its
 * acceptance time (StageInput.versionAt), and two versions of one document accepted in the same
 * millisecond would otherwise be one version, neither replacing the other. (Two API processes
 * accepting versions of one document in the same millisecond still tie: versions are milliseconds.)
 */
let last = 0;

export function acceptanceTime(): string {
  last = Math.max(Date.now(), last + 1);
  return new Date(last).toISOString();
}
