import type { RequestHandler } from 'express';
import type { IndexSetup } from '../lib/elasticsearch/index-setup';

/**
 * Until Cairn's indices exist (a first start under a read-only cluster: IndexSetup), a request first
 * tries to put them in place, and is answered 503 naming the block while it holds: there is nothing
 * to read yet, and a write could have Elasticsearch create an index of its own under an alias.
 */
export const indicesInPlace = (setup: IndexSetup | undefined): RequestHandler => (_req, _res, next) => {
  if (!setup || setup.inPlace) return next();
  setup.ensure().then(() => next(), next);
};
