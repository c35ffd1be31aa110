import type { Request, RequestHandler } from 'express';
import { MAX_UPLOAD_BYTES } from '../lib/domain/ingest';
import { upstreamFailure } from '../lib/errors';

/**
 * Request bodies are held in memory while they are read and accepted (multer's memory storage,
 * express.json): unbounded, a burst of large uploads grew the API by its whole size (40 PDFs of 20 MB
 * sent at once: 0.57 → 1.4 GB resident), past what a container of a gigabyte or two holds, and an API
 * killed for its memory loses every request in flight. So the bodies in flight are counted by their
 * declared length (one without a length, chunked, as the largest body taken), and one that would take
 * the count past the process's budget (REQUEST_BODY_MEMORY_MB) is answered 503 with Retry-After before
 * it is read. A body alone in flight is always read, whatever its size.
 */
export class BodyMemory {
  private held = 0;

  constructor(private readonly budgetBytes: number) {}

  /** Holds the request's body bytes until its answer is sent or its connection closes; once per request. */
  readonly reserve: RequestHandler = (req, res, next) => {
    if (reserved.has(req)) return next();
    const bytes = declaredBytes(req);
    if (bytes === 0) return next();
    if (this.held > 0 && this.held + bytes > this.budgetBytes) {
      const mb = (value: number) => (value / 2 ** 20).toFixed(1);
      return next(upstreamFailure(`the API is reading ${mb(this.held)} MB of request bodies, and this one's ${mb(bytes)} MB would pass the ${mb(this.budgetBytes)} MB it holds at once: send it again shortly`));
    }
    reserved.add(req);
    this.held += bytes;
    res.once('close', () => (this.held -= bytes));
    next();
  };
}

const reserved = new WeakSet<Request>();

function declaredBytes(req: Request): number {
  const length = Number(req.headers['content-length']);
  if (Number.isFinite(length) && length >= 0) return length;
  return req.headers['transfer-encoding'] ? MAX_UPLOAD_BYTES : 0;
}
