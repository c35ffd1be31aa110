import { Router, type ErrorRequestHandler } from 'express';
import { z } from 'zod';
import { CairnError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { authenticate, type KeyResolver } from '../auth';
import { jsonBody, toErrorResponse, withStatus } from '../errors';
import type { BodyMemory } from '../body-memory';
import { indicesInPlace } from '../indices-in-place';
import type { IndexSetup } from '../../lib/elasticsearch/index-setup';

export interface SurfaceError {
  status: number;
  code: string;
  message: string;
  /** zod issues when the error is a validation failure ({path, message, code}). */
  issues?: { path: (string | number)[]; message: string; code: string; /** Where the value was: the body unless said. */ in?: 'path' | 'query' }[];
}

/** How a vendor writes its errors: the status it uses and the body it sends. */
export type ErrorShape = (error: SurfaceError) => { status: number; body: unknown };

export interface SurfaceDeps {
  keys: KeyResolver[];
  log: Logger;
  bodyMemory: BodyMemory;
  /** Held until the indices exist (absent: they do). */
  indexSetup?: IndexSetup;
}

/**
 * One vendor surface: its own authentication, routes, 404 and error shape, so a vendor's client sees
 * the errors it was written for. Routes only translate; the work is IngestJobs' and MemoryStore's.
 */
export function compatSurface(deps: SurfaceDeps, shape: ErrorShape, mount: (router: Router) => void, options: { keyHeader?: string } = {}): Router {
  const router = Router();
  // A vendor whose clients send the key in a header of its own (Memsolus: x-api-key), read as the Bearer key.
  const { keyHeader } = options;
  if (keyHeader) {
    router.use((req, _res, next) => {
      const key = req.get(keyHeader);
      if (key && !req.get('authorization')) req.headers.authorization = `Bearer ${key}`;
      next();
    });
  }
  router.use(indicesInPlace(deps.indexSetup));
  router.use(authenticate(deps.keys));
  router.use(deps.bodyMemory.reserve);
  router.use(jsonBody());
  mount(router);
  router.use((req, _res, next) => next(new CairnError('not_found', `No route for ${req.method} ${req.originalUrl.split('?')[0]}`)));
  const handler: ErrorRequestHandler = (error, req, res, _next) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) deps.log.error({ err: error, path: req.originalUrl }, 'request failed');
    const details = body.error.details;
    const issues = Array.isArray(details) && details.every((d) => d && typeof d === 'object' && 'path' in d) ? (details as SurfaceError['issues']) : undefined;
    const shaped = shape({ status, code: body.error.code, message: body.error.message, issues });
    withStatus(res, shaped.status).json(shaped.body);
  };
  router.use(handler);
  return router;
}

/** FastAPI's shapes (Crosmos, Tex): validation → 422 {detail: [{loc, msg, type}]}, others {detail: message}. */
export const fastApiErrors: ErrorShape = (error) => {
  if (error.code === 'bad_input') {
    const issues = error.issues?.length ? error.issues : [{ path: [], message: error.message, code: 'value_error' }];
    return {
      status: 422,
      body: {
        detail: issues.map((issue) => ({
          loc: [issue.in ?? 'body', ...issue.path],
          msg: issue.message,
          type: fastApiType(issue),
        })),
      },
    };
  }
  return { status: error.status, body: { detail: error.message } };
};

function fastApiType(issue: { message: string; code: string }): string {
  if (/received undefined/.test(issue.message)) return 'missing';
  switch (issue.code) {
    case 'too_small':
      return /string|character/i.test(issue.message) ? 'string_too_short' : 'too_short';
    case 'too_big':
      return /string|character/i.test(issue.message) ? 'string_too_long' : 'too_long';
    case 'invalid_format':
      return /uuid/i.test(issue.message) ? 'uuid_parsing' : 'value_error';
    case 'invalid_type':
      return /expected string/.test(issue.message) ? 'string_type' : /expected array/.test(issue.message) ? 'list_type' : 'model_type';
    default:
      return 'value_error';
  }
}

/** Cairn's own shape, used by surfaces whose vendors document no other: {error: {code, message, details?}}. */
export const nativeErrors: ErrorShape = (error) => ({
  status: error.status,
  body: { error: { code: error.code, message: error.message, ...(error.issues ? { details: error.issues } : {}) } },
});

/**
 * A UUID as the vendors' Python servers read one (Pydantic): hyphenated, 32 bare hex digits, in braces
 * or as `urn:uuid:`, any case; kept in the canonical form, lowercase and hyphenated.
 */
const HYPHENATED = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID_FORMS = new RegExp(`^(?:[0-9a-fA-F]{32}|${HYPHENATED}|\\{${HYPHENATED}\\}|urn:uuid:${HYPHENATED})$`);
export const WireUuid = z.preprocess((value) => {
  if (typeof value !== 'string' || !UUID_FORMS.test(value)) return value;
  const hex = value.replace(/^urn:uuid:/, '').replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}, z.guid());
