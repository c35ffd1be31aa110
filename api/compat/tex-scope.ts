import { z } from 'zod';

/** The scope a Tex write or recall names: the org, and optionally the user and session within it. */
export const TexScope = z.object(
  {
    org_id: z.string().min(1).max(255),
    user_id: z.string().min(1).max(255).optional(),
    session_id: z.string().min(1).max(255).optional(),
  },
  // Tex's SDK sends a hierarchical scope id ("team:eng") as a string, which Cairn's scope has no place for.
  { error: (issue) => (typeof issue.input === 'string' ? `a scope id such as "team:eng" is not supported: send the scope as {org_id, user_id, session_id}` : undefined) },
);
