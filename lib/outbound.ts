import dns from 'node:dns';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';
import { badInput } from './errors';

/**
 * The guard on every request Cairn makes to a URL a user gave it (URL ingestion, webhook deliveries):
 * only http(s) to public addresses, checked on the literal host and again after DNS resolution.
 */

/** Only public unicast addresses: loopback, private, link-local (cloud metadata), CGNAT, … are refused. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  // The deprecated IPv4-compatible form (::a.b.c.d, e.g. ::7f00:1 for 127.0.0.1): no public host uses it.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0)) return false;
  return parsed.range() === 'unicast';
}

/**
 * The check runs inside the connection's DNS lookup, so the address we vet is the address we connect
 * to (no rebinding between check and connect), and it runs again for every redirect hop.
 */
export function guardedAgent(allowPrivate: boolean, resolve: typeof dns.lookup = dns.lookup): Agent {
  return new Agent({
    connect: {
      lookup(hostname, options, callback) {
        resolve(hostname, { ...options, all: true }, (error, addresses) => {
          if (error) return callback(error, '', 0);
          const list = addresses as dns.LookupAddress[];
          const refused = list.find((entry) => !allowPrivate && !isPublicAddress(entry.address));
          if (refused) {
            const denial = Object.assign(new Error(`refused: ${hostname} resolves to non-public address ${refused.address}`), {
              code: 'CAIRN_SSRF_REFUSED',
            });
            return callback(denial, '', 0);
          }
          if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
          callback(null, list[0]!.address, list[0]!.family);
        });
      },
    },
  });
}

export function assertFetchableUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput(`"${raw}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badInput(`URL scheme ${url.protocol} is not allowed; use http or https`);
  if (url.username || url.password) throw badInput('URLs with credentials are not allowed');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && ipaddr.isValid(host) && !isPublicAddress(host)) {
    throw badInput(`refused to fetch ${url.origin}: loopback, private, link-local and metadata addresses are not allowed`);
  }
  if (!allowPrivate && /^(localhost|.*\.localhost|metadata\.google\.internal)$/i.test(host)) {
    throw badInput(`refused to fetch ${url.origin}: local hostnames are not allowed`);
  }
  return url;
}

/**
 * A URL kept for later (a webhook) whose host resolves to an address the guard refuses is refused when
 * it is given, not only at each use: `http://vm:9/` naming this machine is as much loopback as
 * `http://127.0.0.1:9/`. A host that does not resolve (yet) is let through: each use checks again.
 */
export async function assertResolvesPublic(url: URL, allowPrivate: boolean, resolve: LookupAll = (host) => dns.promises.lookup(host, { all: true })): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (allowPrivate || ipaddr.isValid(host)) return;
  const addresses = await resolve(host).catch(() => []);
  const refused = addresses.find((entry) => !isPublicAddress(entry.address));
  if (refused) throw badInput(`refused ${url.origin}: ${host} resolves to ${refused.address}; loopback, private, link-local and metadata addresses are not allowed`);
}

/** Every address a host name resolves to (dns.promises.lookup with `all`). */
export type LookupAll = (host: string) => Promise<dns.LookupAddress[]>;
