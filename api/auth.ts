import type { RequestHandler } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { hashKey, PERMISSIONS, type KeyResolver, type Permission, type Principal } from '../lib/apikeys';
import { forbidden, unauthorized } from '../lib/errors';

export { hashKey, PERMISSIONS, type KeyResolver, type Permission, type Principal };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/** The operator key (CAIRN_API_KEY) may administer keys across tenants, e.g. mint one for a new tenant. */
export const isOperatorKey = (principal: Principal) => principal.operator === true;

/**
 * Keys from CAIRN_API_KEY / CAIRN_API_KEYS: all permissions on their tenant; CAIRN_API_KEY is also the
 * operator key. Held as hashes only.
 */
export class StaticKeyResolver implements KeyResolver {
  private readonly byHash = new Map<string, string>();
  private readonly operatorHash?: string;

  constructor(keys: Map<string, string>, operatorKey?: string) {
    for (const [key, tenant] of keys) this.byHash.set(hashKey(key), tenant);
    this.operatorHash = operatorKey ? hashKey(operatorKey) : undefined;
  }

  async resolve(key: string): Promise<Principal | undefined> {
    const presented = Buffer.from(hashKey(key), 'hex');
    for (const [hash, tenant] of this.byHash) {
      if (timingSafeEqual(presented, Buffer.from(hash, 'hex'))) {
        return { tenant, keyId: `static:${hash.slice(0, 8)}`, permissions: new Set(PERMISSIONS), operator: hash === this.operatorHash };
      }
    }
    return undefined;
  }
}

/** The credential of an `Authorization: Bearer <key>` header, if the request has one. */
export const bearerToken = (req: { get(name: string): string | undefined }) => /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];

/** Who a key is, asking each resolver in turn; undefined for a key none knows. */
export async function resolveKey(resolvers: KeyResolver[], key: string): Promise<Principal | undefined> {
  for (const resolver of resolvers) {
    const principal = await resolver.resolve(key);
    if (principal) return principal;
  }
  return undefined;
}

export function authenticate(resolvers: KeyResolver[]): RequestHandler {
  return async (req, _res, next) => {
    try {
      const key = bearerToken(req);
      if (!key) throw unauthorized('Missing "Authorization: Bearer <key>" header');
      const principal = await resolveKey(resolvers, key);
      if (!principal) throw unauthorized('Invalid API key');
      req.principal = principal;
      next();
    } catch (error) {
      next(error);
    }
  };
}

export function requirePermission(permission: Permission): RequestHandler {
  return (req, _res, next) => {
    if (!req.principal) return next(unauthorized());
    if (!req.principal.permissions.has(permission)) return next(forbidden(permission));
    next();
  };
}

export function principalOf(req: { principal?: Principal }): Principal {
  if (!req.principal) throw unauthorized();
  return req.principal;
}
