import express, { type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { isUtf8 } from 'node:buffer';
import { charsetOf, decodeAs, supported } from '../lib/charset';
import { FORMAT_SIZE_LIMITS } from '../lib/domain/ingest';
import { CairnError, asServiceUnavailable, asTooLargeForTemporal, badInput } from '../lib/errors';
import type { Logger } from '../lib/logger';

/** Parses a request part with a zod schema; failures become a 400 that names every bad field. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, whole = '(body)', pathParam?: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw badInput(
      result.error.issues.map((issue) => `${issue.path.join('.') || whole}: ${issue.message}`).join('; '),
      // A path parameter's issues say so (FastAPI surfaces answer loc: ["path", "<name>"], not ["body"]).
      result.error.issues.map((issue) => ({ path: pathParam ? [pathParam] : issue.path, message: issue.message, code: issue.code, ...(pathParam ? { in: 'path' } : {}) })),
    );
  }
  return result.data;
}

/** parseWith over a query string: its issues say they are the query's (FastAPI surfaces answer loc: ["query", "<name>"]). */
export function parseQuery<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  try {
    return parseWith(schema, value, '(query)');
  } catch (error) {
    if (!(error instanceof CairnError && Array.isArray(error.details))) throw error;
    throw badInput(error.message, (error.details as object[]).map((issue) => ({ ...issue, in: 'query' })));
  }
}

/** A path id as Cairn mints them (letters, digits, `_`, `-`); anything else is a 400 saying it is `not <what>`. */
export const idParam = (value: unknown, what = 'an id') => parseWith(z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, `not ${what}`), value, 'id (path)', 'id');

/**
 * A whole-number query parameter, written in decimal digits: `0x10`, `1e3` or ` 7` are refused, and a
 * parameter given twice (an array) is named as such rather than read as NaN.
 */
export const queryInt = (min: number, max: number, fallback: number) =>
  z
    .string({ error: 'give this parameter once, as a whole number' })
    .regex(/^\d{1,9}$/, 'a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback);

/** How deep a request's JSON may nest; no Cairn body comes near it (metadata stops at 16 levels). */
export const MAX_JSON_DEPTH = 64;

/**
 * JSON bodies: conversations can be large (the CONVERSATION limit, lib/domain/ingest.ts). Nesting is
 * bounded before the body is parsed: the checks that measure a value (JSON.stringify) recurse, and a
 * few thousand levels in a 10 KB body overflowed the stack (a 500).
 */
export const jsonBody = () =>
  express.json({
    limit: FORMAT_SIZE_LIMITS.CONVERSATION,
    verify: (req, _res, body) => {
      // The scan reads UTF-8 (and ASCII) bytes; a body in another charset body-parser accepts is read as text first.
      const encoding = supported(charsetOf(req.headers['content-type']));
      // body-parser would read invalid UTF-8 with U+FFFD in place of each bad byte (a Latin-1 body's
      // accented letters lost, answered 202): refused instead, naming the way to send it.
      if ((!encoding || encoding === 'utf-8') && !isUtf8(body)) {
        throw Object.assign(new Error('Request body is not valid UTF-8: JSON is sent in UTF-8 (or in UTF-16 or UTF-32, declared as the charset in Content-Type)'), {
          status: 400,
          expose: true,
          type: 'entity.verify.failed',
        });
      }
      const bytes = encoding && encoding !== 'utf-8' ? Buffer.from(decodeAs(encoding, body)) : body;
      if (nestedDeeperThan(bytes, MAX_JSON_DEPTH)) {
        throw Object.assign(new Error(`Request body is nested over ${MAX_JSON_DEPTH} levels`), { status: 400, expose: true, type: 'entity.verify.failed' });
      }
      // Parsed objects built from it (zod's records) take "__proto__" as the prototype, not a key: the
      // field vanished without a word, and a metadata filter on it matched everything. Refused instead.
      if (namesProto(bytes)) {
        throw Object.assign(new Error('Request body uses "__proto__" as a key, which is not allowed'), { status: 400, expose: true, type: 'entity.verify.failed' });
      }
    },
  });

/** Whether the JSON has a key "__proto__", however escaped (read again only when it might). */
function namesProto(json: Buffer): boolean {
  if (!json.includes('__') && !json.includes('\\u')) return false;
  let found = false;
  try {
    JSON.parse(json.toString('utf8'), (key, value) => {
      if (key === '__proto__') found = true;
      return value;
    });
  } catch {
    // Not JSON: the parser says so next.
  }
  return found;
}

/** Whether JSON text opens more than `limit` objects or arrays inside one another (one pass, strings skipped). */
export function nestedDeeperThan(json: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const byte = json[i];
    if (inString) {
      if (byte === 0x5c) i++; // a backslash: the next byte is escaped
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x7b || byte === 0x5b) {
      if (++depth > limit) return true;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * A body sent as anything but JSON (or, on `multipartPaths`, multipart) to a JSON route is a 415
 * naming the type, not a 400 about fields that were never read.
 */
export function jsonOnly(multipartPaths: string[] = []): RequestHandler {
  return (req, _res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    const type = req.get('content-type');
    if (!hasBody || !type || req.is('json') || (multipartPaths.includes(req.path) && req.is('multipart/form-data'))) return next();
    next(new CairnError('unsupported_media_type', `send the body as application/json, not ${type.split(';')[0]}`));
  };
}

export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `No route for ${req.method} ${req.path}` } });
};

/**
 * The native error shape: {error: {code, message, details?}}. Vendor surfaces install their own
 * handler before this one. Bad input is never a 5xx; unexpected errors are logged, not echoed.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) log.error({ err: error, path: req.path }, 'request failed');
    withStatus(res, status).json(body);
  };
}

/** What a 503 (a service down) suggests the client waits before trying again. */
export const RETRY_AFTER_S = 5;

/** Sets an error answer's status; every 503 (a service down) carries Retry-After. */
export function withStatus(res: Response, status: number): Response {
  if (status === 503) res.set('Retry-After', String(RETRY_AFTER_S));
  return res.status(status);
}

/** The error code a status stands for (lib/errors.ts), for errors raised outside Cairn's own (body-parser's). */
function httpCodeOf(status: number): string {
  return ({ 413: 'payload_too_large', 415: 'unsupported_media_type' } as Record<number, string>)[status] ?? 'bad_input';
}

export function toErrorResponse(error: unknown): { status: number; body: { error: { code: string; message: string; details?: unknown } } } {
  error = asTooLargeForTemporal(error) ?? asServiceUnavailable(error) ?? error;
  if (error instanceof CairnError) {
    return { status: error.httpStatus, body: { error: { code: error.code, message: error.message, details: error.details } } };
  }
  const bodyParserError = error as { type?: string; status?: number; message?: string; expose?: boolean };
  if (bodyParserError?.type === 'entity.too.large') {
    return { status: 413, body: { error: { code: 'payload_too_large', message: 'Request body is too large' } } };
  }
  if (bodyParserError?.type === 'entity.parse.failed') {
    return { status: 400, body: { error: { code: 'bad_input', message: 'Request body is not valid JSON' } } };
  }
  if (error instanceof URIError) {
    // The router could not percent-decode a path parameter (`/v1/jobs/%ff`).
    return { status: 400, body: { error: { code: 'bad_input', message: 'The path is not validly percent-encoded' } } };
  }
  // A body in an encoding or charset this API cannot read is the media type's problem (415), whatever
  // status the parser chose for an encoding it has never heard of.
  if (bodyParserError?.type === 'encoding.unsupported' || bodyParserError?.type === 'charset.unsupported') {
    return { status: 415, body: { error: { code: 'unsupported_media_type', message: bodyParserError.message ?? 'Unsupported body encoding' } } };
  }
  if (bodyParserError?.expose && bodyParserError.status && bodyParserError.status < 500) {
    return { status: bodyParserError.status, body: { error: { code: httpCodeOf(bodyParserError.status), message: bodyParserError.message ?? 'Bad request' } } };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'Internal error' } } };
}
