import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngestJobs } from './jobs';

/**
 * The API's Prometheus metrics: request rate, latency and errors per route. Routes are labelled by
 * their pattern (`/v1/jobs/:id`), never the raw path, so ids cannot explode the label cardinality.
 * The worker's metrics come from the Temporal runtime's own exporter (see worker/telemetry.ts).
 */
export class ApiMetrics {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: 'cairn_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  private readonly errors = new Counter({
    name: 'cairn_http_request_errors_total',
    help: 'HTTP requests answered with a 4xx or 5xx, by route pattern and status class',
    labelNames: ['method', 'route', 'class'] as const,
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: 'cairn_http_request_duration_seconds',
    help: 'HTTP request latency, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly acceptSteps = new Histogram({
    name: 'cairn_ingest_accept_step_seconds',
    help: "Time of each step an accepted ingest waits on: a fresh job's upload written (upload_write) and flushed (upload_flush), the workflow start until Temporal acknowledged it (start), a slow start's record (start_record), and a journaled job's entry appended and flushed (journal)",
    labelNames: ['step'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /**
   * With the ingest jobs: their start counts are read when scraped, and each acceptance step is timed.
   * `routeOf` names the route of a request answered before routing (api/openapi.ts documentedRoute).
   */
  constructor(
    jobs?: Pick<IngestJobs, 'startStats' | 'onAcceptStep'>,
    private readonly routeOf?: (method: string, path: string) => string | undefined,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'cairn_api_' });
    if (!jobs) return;
    jobs.onAcceptStep = (step, seconds) => this.acceptSteps.observe({ step }, seconds);
    const starts = () => jobs.startStats();
    // Read from IngestJobs when scraped (see IngestJobs.start: answering before a slow start).
    new Counter({
      name: 'cairn_ingest_accepted_before_start_total',
      help: 'Fresh ingest jobs answered before Temporal acknowledged their start: from the acceptance journal, or from the start\'s record past ACCEPT_START_WAIT_MS',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(starts().acceptedEarly);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('cairn_ingest_starts_completing', 'Accepted jobs whose start this process is still completing in the background', () => starts().completing);
    gauge('cairn_ingest_starts_failing', 'Accepted jobs whose recorded start failed at its last attempt by this process; retried with a backoff of up to 2 min', () => starts().failing);
  }

  /**
   * Times every request; the label is read once the response is finished and the route is known.
   * The time spent in this process until the answer's headers go out is also sent to the caller as
   * `Server-Timing: app;dur=<ms>` (the W3C header browsers' devtools and load tools read), so a client
   * can tell the API's own time from the network's and its own.
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const stop = process.hrtime.bigint();
      const writeHead = res.writeHead;
      res.writeHead = function (this: typeof res, ...args: Parameters<typeof res.writeHead>) {
        if (!this.headersSent) this.setHeader('Server-Timing', `app;dur=${(Number(process.hrtime.bigint() - stop) / 1e6).toFixed(1)}`);
        return writeHead.apply(this, args);
      } as typeof res.writeHead;
      res.once('finish', () => {
        const seconds = Number(process.hrtime.bigint() - stop) / 1e9;
        // Answered before routing (a bad key, a body that is no JSON): its documented route, else "unmatched".
        const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : (this.routeOf?.(req.method, req.originalUrl) ?? 'unmatched');
        const labels = { method: req.method, route };
        this.requests.inc({ ...labels, status: String(res.statusCode) });
        this.latency.observe(labels, seconds);
        if (res.statusCode >= 400) this.errors.inc({ ...labels, class: `${Math.floor(res.statusCode / 100)}xx` });
      });
      next();
    };
  }

  /** GET /metrics in the Prometheus text format. */
  handler(): RequestHandler {
    return async (_req, res) => {
      res.type(this.registry.contentType).send(await this.registry.metrics());
    };
  }
}
