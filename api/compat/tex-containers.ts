import type { Request } from 'express';
import { badInput } from '../../lib/errors';
import { sourceId } from '../../lib/ids';
import { principalOf } from '../auth';
import type { Containers } from './containers';
import { actingUser, checkActsFor } from './tex-auth';

/**
 * Tex's containers are its users ("container_tag names the container (user) the document belongs
 * to"), so what Tex's SDK writes through supermemory's API is filed as its turns are: under the
 * tenant as org and the user as `scope.user_id`, where recall() finds it, and a container's reads find
 * the user's turns too. With an access token, the token's user is the container: naming another is
 * refused (checkActsFor). With the key itself a write goes to the container it names, else to the key's own user (the
 * one /auth/verify names), and a read without one reads every user of the tenant, as recall() and
 * jobs.get() do with the key.
 */
function namedUser(req: Request, tags: string[] | undefined): string | undefined {
  const named = [...new Set(tags ?? [])];
  if (named.length > 1) throw badInput(`containerTags: a Tex container is a user, and a document or memory belongs to one; ${named.length} were named`);
  return checkActsFor(req, named[0], 'containerTag');
}

export const texContainers: Containers = {
  surface: 'tex',
  scopeOf: (req, tags) => {
    return { orgId: principalOf(req).tenant, userId: namedUser(req, tags) ?? actingUser(req) };
  },
  filtersOf: (req, tags) => {
    const user = namedUser(req, tags);
    return user === undefined ? {} : { user_id: user };
  },
  // The key's own user when none is named, as its writes: a forget by content never reaches every user's memories.
  ownFiltersOf: (req, tags) => ({ user_id: texContainers.scopeOf(req, tags).userId }),
  holds: (req, scope, tag) => {
    const user = namedUser(req, tag === undefined ? undefined : [tag]);
    return user === undefined || scope.user_id === user;
  },
  tagsOf: (scope) => (typeof scope?.user_id === 'string' ? [scope.user_id] : []),
  // A customId names a document of its user: two users' "notes" are two documents, neither a new version of the other's.
  sourceOfCustomId: (tenant, scope, customId) => (customId === undefined ? undefined : sourceId(tenant, `tex-doc:${JSON.stringify([scope.userId, customId])}`)),
};
