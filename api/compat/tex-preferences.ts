import type { Router } from 'express';
import { z } from 'zod';
import { Preference, preferenceText, refuseRestatedPreferences } from '../../lib/domain/preference';
import { countTokens } from '../../lib/chunking/tokens';
import type { IngestJobs } from '../../lib/jobs';
import { principalOf, requirePermission } from '../auth';
import { parseWith } from '../errors';
import { actingUser, checkActsFor } from './tex-auth';

/** "_" is what Tex's SDK sends for an org or user it could not learn (preferences.py): none named. */
const Named = z.string().min(1).max(255).transform((id) => (id === '_' ? undefined : id));

/** Tex's SDK's `preferences.store` body: the tenant scope flat, the preferences checked as its validate_preference checks them. */
export const TexPreferenceRequest = z.strictObject({
  org_id: Named.optional(),
  user_id: Named.optional(),
  session_id: z.string().min(1).max(255).nullish(),
  preferences: z.array(Preference).min(1).max(100).superRefine(refuseRestatedPreferences),
  scope: z.unknown().refine((scope) => scope === undefined, 'a scope id such as "team:eng" is not supported: leave scope out (preferences are stored for the user)').optional(),
});

export const TexPreferenceResponse = z.object({
  job_id: z.string(),
  /** `stored`: the preferences are searchable (recall, search, profile) when this is answered. */
  status: z.literal('stored'),
  preferences_count: z.number().int(),
  /** Each preference's memory id, in the order sent (stated again, a preference keeps its id). */
  memory_ids: z.array(z.string()),
  org_id: z.string(),
  user_id: z.string(),
  usage: z.object({ tokens_in: z.number().int(), tokens_out: z.number().int() }),
});

export function texPreferenceRoutes(router: Router, jobs: IngestJobs): void {
  router.post('/ingestion/preference', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(TexPreferenceRequest, req.body);
    const principal = principalOf(req);
    checkActsFor(req, body.user_id, 'user_id');
    // The user named, else the token's, else the key's own (the user /auth/verify names, whose container profile() reads).
    const userId = body.user_id ?? actingUser(req);
    const orgId = body.org_id ?? principal.tenant;
    const scope = { orgId, userId, ...(body.session_id ? { sessionId: body.session_id } : {}) };
    const content = JSON.stringify({ preferences: body.preferences });
    // The same preferences stated again by the same user are the same job.
    const jobId = jobs.derivedJobId(principal.tenant, 'tex-preference', orgId, userId, content);
    const job = await jobs.startActiveWrite(
      { tenant: principal.tenant, kind: 'document', format: 'JSON', documentType: 'note', scope, surface: 'tex', writePassive: false, statedAs: 'preferences', content },
      { jobId, sourceKey: `tex-preferences:${orgId}:${userId}` },
    );
    res.json({
      job_id: job.jobId,
      status: 'stored',
      preferences_count: body.preferences.length,
      memory_ids: job.active.fragmentIds,
      org_id: orgId,
      user_id: userId,
      usage: { tokens_in: body.preferences.reduce((sum, preference) => sum + countTokens(preferenceText(preference)), 0), tokens_out: 0 },
    } satisfies z.infer<typeof TexPreferenceResponse>);
  });
}
