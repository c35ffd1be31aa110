import { randomUUID } from 'node:crypto';
import type { Router } from 'express';
import { z } from 'zod';
import { Iso8601Date } from '../../lib/domain/dates';
import { SESSION_WINDOW, type MemoryListings, type SessionSummary } from '../../lib/memory-listings';
import { principalOf, requirePermission } from '../auth';
import { parseQuery, parseWith } from '../errors';
import { tokenUser } from './tex-auth';
import { rememberTurns, TexIngestRequest, TexIngestResponse, TexTurn, type TexWriteDeps } from './tex-remember';
import { TexScope } from './tex-scope';

/**
 * Tex's episodes: an episode is a session of the user's, so `episodes.store` is `conversations.remember`
 * of its messages into the episode's session, and `episodes.list` lists the user's sessions.
 */

/** A message as `episodes.store` takes it: `{role, content|text, timestamp?}` (a turn, with `content` for `text`). */
const TexEpisodeMessage = TexTurn.omit({ text: true })
  .extend({ text: TexTurn.shape.text.optional(), content: TexTurn.shape.text.optional() })
  .refine((message) => (message.text === undefined) !== (message.content === undefined), { message: 'send the message as content or text (one of the two)', path: ['content'] });

export const TexEpisodeRequest = z.object({
  messages: z.array(TexEpisodeMessage).min(1).max(1000),
  // The SDK sends the session it knows, or null.
  scope: TexScope.extend({ session_id: TexScope.shape.session_id.nullable() }),
  episode_id: z.string().min(1).max(255).optional(),
  metadata: TexIngestRequest.shape.metadata,
  options: TexIngestRequest.shape.options,
  timezone: TexIngestRequest.shape.timezone,
});

export const TexEpisodeResponse = TexIngestResponse.extend({
  episode_id: z.string(),
  /** `stored`: recallable now (the active tier wrote each message); `queued`: written with write_active false, recallable once its job is done. */
  status: z.enum(['stored', 'queued']),
  message: z.string(),
});

export const TexEpisodeListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(SESSION_WINDOW - 1).default(0),
  /** Episodes written to since then (ISO 8601). */
  since: Iso8601Date.optional(),
});

const Episode = z.object({
  episode_id: z.string(),
  org_id: z.string().nullable(),
  user_id: z.string().nullable(),
  session_id: z.string(),
  turn_count: z.number().int(),
  /** When its first and last turns were stored. */
  created_at: z.string(),
  updated_at: z.string(),
  /** When its first and last turns were said, as their timestamps read (null without). */
  first_turn_at: z.string().nullable(),
  last_turn_at: z.string().nullable(),
});

const episodeOf = (session: SessionSummary): z.infer<typeof Episode> => ({
  episode_id: session.session_id,
  org_id: session.org_id,
  user_id: session.user_id,
  session_id: session.session_id,
  turn_count: session.turn_count,
  created_at: session.first_stored_at,
  updated_at: session.last_stored_at,
  first_turn_at: session.first_said_at,
  last_turn_at: session.last_said_at,
});

export const TexEpisodeList = z.object({ episodes: z.array(Episode), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });

export function texEpisodeRoutes(router: Router, writes: TexWriteDeps, listings: MemoryListings): void {
  router.post('/ingestion/episode', requirePermission('ingest'), async (req, res) => {
    const body = parseWith(TexEpisodeRequest, req.body);
    const episodeId = body.episode_id ?? body.scope.session_id ?? req.texClaims?.session_id ?? `ep_${randomUUID()}`;
    const written = await rememberTurns(writes, req, {
      scope: { ...body.scope, session_id: episodeId },
      turns: body.messages.map(({ content, text, ...message }) => ({ ...message, text: (text ?? content)! })),
      options: body.options,
      metadata: body.metadata,
      timezone: body.timezone,
    }, 'messages');
    const active = body.options.write_active;
    res.status(202).json({
      episode_id: episodeId,
      status: active ? 'stored' : 'queued',
      message: active
        ? `stored ${body.messages.length} message(s) as turns of episode ${episodeId}: recallable now, enriched by job ${written.job_id}`
        : `queued ${body.messages.length} message(s) of episode ${episodeId}: recallable once job ${written.job_id} is done`,
      ...written,
    } satisfies z.infer<typeof TexEpisodeResponse>);
  });

  router.get('/memories/episodes', requirePermission('read'), async (req, res) => {
    const query = parseQuery(TexEpisodeListQuery, req.query);
    const filters = { surface: 'tex', userId: tokenUser(req), since: query.since === undefined ? undefined : new Date(query.since) };
    const { sessions, total } = await listings.sessions(principalOf(req).tenant, filters, query);
    res.json({ episodes: sessions.map(episodeOf), total, limit: query.limit, offset: query.offset } satisfies z.infer<typeof TexEpisodeList>);
  });
}
