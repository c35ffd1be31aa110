import { z } from 'zod';
import { sha256 } from '../ids';
import { LooseDate } from './dates';
import type { Scope } from './ingest';

/**
 * A preference stated outright (Tex's PreferenceItem): stored as a `preference` memory as it is,
 * without extraction. Its fields are Tex's; anything else is refused, as Tex's SDK refuses it.
 */
const Named = z.string().trim().min(1, 'must be a non-empty string').max(500);

export const Preference = z.strictObject({
  category: Named,
  entity: Named,
  entity_type: Named,
  preference_type: z.enum(['PREFERS', 'DISLIKES']),
  context: z.string().trim().max(2_000).nullish(),
  confidence: z.enum(['high', 'medium', 'low'], { error: 'must be one of high, medium, low (a level, not a number)' }).default('medium'),
  source: z.string().trim().max(500).nullish(),
  /** When it was stated: the memory's date. */
  timestamp: LooseDate.nullish(),
});
export type Preference = z.infer<typeof Preference>;

/** The memory confidence a level stands for. */
export const PREFERENCE_CONFIDENCE: Record<Preference['confidence'], number> = { high: 0.9, medium: 0.7, low: 0.4 };

/** What the memory says: "Prefers Italian food (cuisine; food): when eating out". */
export function preferenceText(preference: Preference): string {
  const verb = preference.preference_type === 'PREFERS' ? 'Prefers' : 'Dislikes';
  const context = preference.context ? `: ${preference.context}` : '';
  return `${verb} ${preference.entity} (${preference.entity_type}; ${preference.category})${context}`;
}

/**
 * A preference's identity within its user: what it is about (category, entity and its type, the
 * context it holds in), not whether it is liked or how surely. Stated again, changed ("DISLIKES"
 * now, or more surely), it replaces what was stored, rather than standing beside it.
 */
export function preferenceId(tenant: string, scope: Scope, preference: Preference): string {
  return sha256('tex-preference', tenant, scope.orgId, scope.userId, ...preferenceSubject(preference));
}

/** What a preference is about (preferenceId's words): two preferences with the same subject are one memory. */
const preferenceSubject = (preference: Preference) =>
  [preference.category, preference.entity_type, preference.entity, preference.context].map((text) => (text ?? '').trim().toLowerCase());

/**
 * Two preferences of one call about the same thing that say it differently (PREFERS and DISLIKES, two
 * confidences) would be one memory, the last: which one was meant is the caller's to say, so they are
 * refused. The same preference twice is one memory, as sent.
 */
export function refuseRestatedPreferences(preferences: Preference[], context: z.RefinementCtx): void {
  const first = new Map<string, number>();
  preferences.forEach((preference, index) => {
    const subject = JSON.stringify(preferenceSubject(preference));
    const earlier = first.get(subject);
    if (earlier === undefined) return void first.set(subject, index);
    if (JSON.stringify(preferences[earlier]) !== JSON.stringify(preference)) {
      context.addIssue({ code: 'custom', path: [index], message: `states preferences.${earlier} (${preference.entity}, ${preference.entity_type}; ${preference.category}) again, differently: send the one meant` });
    }
  });
}
