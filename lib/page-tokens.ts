import { badInput } from './errors';
import { sha256 } from './ids';

/**
 * Page tokens as every listing hands them out: where the page ended (bytes: Temporal's own token, or
 * JSON of a position), base64url, sealed with a check of the listing it continues (its query, or the
 * tenant, what is listed and the filters). A token cut, forged or taken to another listing is refused
 * with 400 instead of being followed. A check, not a secret: the tenant's filter applies whatever a
 * token says, so a token can only ever continue the caller's own listing.
 */
const checkOf = (position: Uint8Array, listing: string) => sha256('page-token', listing, Buffer.from(position).toString('base64')).slice(0, 16);

export function sealPageToken(position: Uint8Array, listing: string): string {
  return `${Buffer.from(position).toString('base64url')}.${checkOf(position, listing)}`;
}

/** The position a token sealed for this listing holds; anything else is a 400 naming `refusal`. */
export function openPageToken(sealed: string, listing: string, refusal = 'page_token is not valid for this listing: start again without it'): Buffer {
  const [body, check, ...rest] = sealed.split('.');
  const position = Buffer.from(body ?? '', 'base64url');
  if (rest.length > 0 || position.length === 0 || check !== checkOf(position, listing)) throw badInput(refusal);
  return position;
}
