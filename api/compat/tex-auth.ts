import { Router, type ErrorRequestHandler, type Request } from 'express';
import { z } from 'zod';
import type { KeyResolver, Principal } from '../../lib/apikeys';
import { CairnError } from '../../lib/errors';
import { bearerToken, principalOf, resolveKey } from '../auth';
import { jsonBody, toErrorResponse, withStatus } from '../errors';
import { fastApiErrors } from './surface';

/**
 * How Tex's SDK (tex-sdk) signs in: `Tex(api_key=…)` exchanges its key for an access token
 * (`POST /auth/token-exchange`, no Authorization header), optionally for a user it names, then asks
 * who the token acts as (`GET /auth/verify`) to fill the scope it writes under (org, user, session).
 *
 * Cairn's token is JWT-shaped so the SDK can read its claims (org_id: the key's tenant; user_id: the
 * user named at the exchange, else the key's own identity, as Tex mints a token for the key's synthetic
 * user; session_id when named), and its third part is the key itself: the token is a bearer credential
 * worth exactly the key (the tenant's data, the key's permissions), so it is kept as secret as the key.
 * Nothing is stored, nothing expires: revoking the key revokes every token made from it. The claims are
 * not signed: holding a user to its own data (checkActsFor) keeps a client built for one user from
 * reaching another's by mistake, and is no boundary against whoever holds the token, who holds the key.
 */
export const TexTokenExchange = z.object({
  api_key: z.string().min(1).max(512),
  user_id: z.string().min(1).max(255).optional(),
  session_id: z.string().min(1).max(255).optional(),
});
export const TexTokens = z.object({ access_token: z.string(), token_type: z.literal('bearer') });
export const TexVerified = z.object({
  valid: z.literal(true),
  tenant: z.object({ org_id: z.string(), user_id: z.string(), session_id: z.string().optional() }),
});

export interface TexClaims {
  org_id: string;
  user_id: string;
  session_id?: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** The claims of the Tex access token the request was made with, when it was made with one. */
    texClaims?: TexClaims;
  }
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');
const HEADER = base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));

/** The identity a key acts as when no user is named: the key's own, as Tex's synthetic user. */
export const keyUser = (principal: Principal) => `key:${principal.keyId}`;

/** The user a Tex request acts as when it names none: its access token's, else the key's own (the one /auth/verify names). */
export const actingUser = (req: Request) => req.texClaims?.user_id ?? keyUser(principalOf(req));

/**
 * The user a request's access token was minted for, when it was minted for one: a token minted without
 * one acts as the key's own identity, as the SDK's org-admin client (`Tex(api_key=…)`) signs in, and is
 * the key.
 */
export function tokenUser(req: Request): string | undefined {
  const claimed = req.texClaims?.user_id;
  return claimed === undefined || claimed === keyUser(principalOf(req)) ? undefined : claimed;
}

/**
 * Every Tex route's one rule for a user named in a request (a write's scope, a preference's user, a
 * container, a deletion's target): a token minted for a user acts for that user only, and naming another
 * is a 403; the key itself, or a token minted without a user, may name any user of its tenant. Answers
 * the user the request is for: the one named, else the token's (none: every user, or the key's default).
 */
export function checkActsFor(req: Request, named: string | undefined, what: string): string | undefined {
  const user = tokenUser(req);
  if (user !== undefined && named !== undefined && named !== user) {
    throw new CairnError('forbidden', `this access token acts for user ${user} only: ${what} names user ${named} (a client built without user_id= acts for any user)`);
  }
  return named ?? user;
}

function tokenFor(apiKey: string, claims: TexClaims): string {
  return `${HEADER}.${base64url(JSON.stringify(claims))}.${base64url(apiKey)}`;
}

/** A Tex access token's key and claims; undefined for anything else (an API key sent as is). */
function openToken(token: string): { apiKey: string; claims: TexClaims } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as TexClaims;
    const apiKey = Buffer.from(parts[2]!, 'base64url').toString('utf8');
    if (typeof claims?.org_id !== 'string' || typeof claims.user_id !== 'string' || !apiKey) return undefined;
    return { apiKey, claims };
  } catch {
    return undefined;
  }
}

/**
 * Tex's sign-in routes, and a token presented as `Authorization: Bearer <token>` read as the key it
 * was made from (its claims kept on the request), ahead of the surface's own authentication.
 */
export function texAuth(keys: KeyResolver[]): Router {
  const router = Router();
  router.post('/auth/token-exchange', jsonBody(), async (req, res) => {
    const body = TexTokenExchange.safeParse(req.body);
    if (!body.success) {
      return void res.status(422).json({ detail: body.error.issues.map((issue) => ({ loc: ['body', ...issue.path], msg: issue.message, type: 'value_error' })) });
    }
    const principal = await resolveKey(keys, body.data.api_key);
    if (!principal) return void res.status(401).json({ detail: 'Invalid API key' });
    const claims: TexClaims = { org_id: principal.tenant, user_id: body.data.user_id ?? keyUser(principal), ...(body.data.session_id ? { session_id: body.data.session_id } : {}) };
    res.json({ access_token: tokenFor(body.data.api_key, claims), token_type: 'bearer' });
  });

  router.use((req, _res, next) => {
    const token = bearerToken(req);
    const opened = token && openToken(token);
    if (opened) {
      req.headers.authorization = `Bearer ${opened.apiKey}`;
      req.texClaims = opened.claims;
    }
    next();
  });

  router.get('/auth/verify', async (req, res) => {
    const key = bearerToken(req);
    const principal = key ? await resolveKey(keys, key) : undefined;
    if (!principal) return void res.status(401).json({ detail: key ? 'Invalid API key' : 'Missing "Authorization: Bearer <key>" header' });
    // The org is the key's tenant whatever the token's unsigned claims say (they only choose defaults within it).
    res.json({ valid: true, tenant: req.texClaims ? { ...req.texClaims, org_id: principal.tenant } : { org_id: principal.tenant, user_id: keyUser(principal) } });
  });
  // Errors before the surface's routes (a body that is no JSON) in Tex's shape too, not the native API's.
  const texErrors: ErrorRequestHandler = (error, _req, res, _next) => {
    const { status, body } = toErrorResponse(error);
    const shaped = fastApiErrors({ status, code: body.error.code, message: body.error.message });
    withStatus(res, shaped.status).json(shaped.body);
  };
  router.use(texErrors);
  return router;
}
