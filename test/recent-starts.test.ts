import { RecentStarts } from '../lib/recent-starts';
import type { IngestWorkflowInput } from '../workflows/ingest';

const run = (tenant: string, jobId: string) => ({ jobId, request: { tenant } }) as IngestWorkflowInput;

describe("a process's recent starts, which visibility may not list yet", () => {
  it("answers a tenant's starts of the last 30 s, oldest first, and forgets older ones", () => {
    const recent = new RecentStarts();
    recent.add(run('acme', 'a'), 0);
    recent.add(run('globex', 'b'), 10_000);
    recent.add(run('acme', 'c'), 20_000);
    expect(recent.ofTenant('acme', 29_000).map((input) => input.jobId)).toEqual(['a', 'c']);
    expect(recent.ofTenant('globex', 29_000).map((input) => input.jobId)).toEqual(['b']);
    expect(recent.ofTenant('acme', 31_000).map((input) => input.jobId)).toEqual(['c']);
    expect(recent.ofTenant('acme', 51_000)).toEqual([]);
  });

  it('counts a job id started again (a failed Synap document sent again) from its latest start', () => {
    const recent = new RecentStarts();
    recent.add(run('acme', 'a'), 0);
    recent.add(run('acme', 'b'), 5_000);
    recent.add(run('acme', 'a'), 25_000);
    expect(recent.ofTenant('acme', 40_000).map((input) => input.jobId)).toEqual(['a']);
  });
});
