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
  const key = (text: string | null | undefined) => (text ?? '').trim().toLowerCase();
  return sha256('tex-preference', tenant, scope.orgId, scope.userId, key(preference.category), key(preference.entity_type), key(preference.entity), key(preference.context));
}
