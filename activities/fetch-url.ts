import type dns from 'node:dns';
import zlib from 'node:zlib';
import { request } from 'undici';
import { badInput, CairnError, upstreamFailure } from '../lib/errors';
import { assertFetchableUrl, guardedAgent } from '../lib/outbound';

export interface SafeFetchOptions {
  maxBytes?: number;
  timeoutMs?: number;
  maxRedirects?: number;
  /** Allows loopback/private targets: only for tests that serve fixtures on 127.0.0.1. */
  allowPrivateNetworks?: boolean;
  onProgress?: (bytes: number) => void;
  /** DNS resolver; tests hand in one that maps a name to a private address. */
  lookup?: typeof dns.lookup;
}

export interface FetchedUrl {
  body: Buffer;
  contentType?: string;
  finalUrl: string;
}

const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;

/**
 * A body the server compressed although none was asked for (no Accept-Encoding is sent), inflated
 * within the same byte cap, so a small compressed response cannot unpack into gigabytes.
 */
function decompress(body: Buffer, encoding: string, href: string, maxBytes: number): Buffer {
  const inflate = { gzip: zlib.gunzipSync, 'x-gzip': zlib.gunzipSync, deflate: zlib.inflateSync, br: zlib.brotliDecompressSync }[encoding];
  if (encoding === 'identity' || encoding === '') return body;
  if (!inflate) throw badInput(`${href} answered in a content encoding Cairn cannot read (${encoding})`);
  try {
    return inflate(body, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw badInput(`${href} unpacks to over the ${maxBytes} byte limit`);
    throw badInput(`${href} answered a ${encoding} body that could not be decoded: ${(error as Error).message}`);
  }
}

/** Node's codes for a certificate that cannot be trusted. */
const TLS_REFUSALS = /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|ERR_TLS_CERT_ALTNAME_INVALID)/;

export async function fetchUrlSafely(raw: string, options: SafeFetchOptions = {}): Promise<FetchedUrl> {
  // Callers pass the validated config value; the environment is only a fallback for scripts.
  const allowPrivate = options.allowPrivateNetworks ?? process.env.CAIRN_ALLOW_PRIVATE_URLS === 'true';
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxRedirects = options.maxRedirects ?? 5;
  const deadline = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  const dispatcher = guardedAgent(allowPrivate, options.lookup);
  let url = assertFetchableUrl(raw, allowPrivate);
  try {
    for (let hop = 0; hop <= maxRedirects; hop++) {
      let response;
      try {
        response = await request(url, {
          method: 'GET',
          dispatcher,
          signal: deadline,
          headers: { 'user-agent': 'Cairn/0.1 (+memory ingestion)', accept: 'text/html,application/xhtml+xml,application/pdf,text/*,*/*;q=0.5' },
        });
      } catch (error) {
        const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
        if (code === 'CAIRN_SSRF_REFUSED' || /refused: /.test(String((error as Error).message))) {
          throw badInput(`refused to fetch ${url.origin}: it resolves to a loopback, private, link-local or metadata address`);
        }
        if (code === 'ENOTFOUND') throw badInput(`the host ${url.hostname} does not exist`);
        // A certificate that is expired, self-signed or for another name does not fix itself on retry.
        if (code && TLS_REFUSALS.test(code)) throw badInput(`refused to fetch ${url.href}: its TLS certificate is not valid (${code})`);
        // EAI_AGAIN (resolver unavailable), ECONNREFUSED, resets: transient, worth a retry.
        if ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') throw upstreamFailure(`fetching ${url.href} timed out`);
        throw upstreamFailure(`fetching ${url.href} failed: ${(error as Error).message}`);
      }
      const { statusCode, headers, body } = response;
      if (statusCode >= 300 && statusCode < 400 && headers.location) {
        await body.dump();
        url = assertFetchableUrl(new URL(String(headers.location), url).href, allowPrivate);
        continue;
      }
      if (statusCode >= 300 && statusCode < 400) {
        // A redirect that names no target (or a 300 choice page) is not the document.
        await body.dump();
        throw badInput(`${url.href} answered ${statusCode} without a location to follow`);
      }
      if (statusCode >= 500 || statusCode === 429) {
        await body.dump();
        throw upstreamFailure(`${url.href} answered ${statusCode}`);
      }
      if (statusCode >= 400) {
        await body.dump();
        throw badInput(`${url.href} answered ${statusCode}`);
      }
      const declared = Number(headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        await body.dump();
        throw badInput(`${url.href} is ${declared} bytes, over the ${maxBytes} byte limit`);
      }
      const parts: Buffer[] = [];
      let total = 0;
      try {
        for await (const part of body) {
          total += part.length;
          if (total > maxBytes) {
            body.destroy();
            throw badInput(`${url.href} is over the ${maxBytes} byte limit`);
          }
          parts.push(part as Buffer);
          options.onProgress?.(total);
        }
      } catch (error) {
        if (error instanceof CairnError) throw error;
        // The time limit (or the connection) ran out while the body was still arriving.
        const what = (error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError' ? 'timed out while reading' : `failed while reading (${(error as Error).message})`;
        throw upstreamFailure(`fetching ${url.href} ${what}`);
      }
      const contentType = headers['content-type'];
      const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase().trim();
      return { body: decompress(Buffer.concat(parts), encoding, url.href, maxBytes), contentType: Array.isArray(contentType) ? contentType[0] : contentType, finalUrl: url.href };
    }
    throw badInput(`${raw} redirected more than ${maxRedirects} times`);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}
