import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, makeTelemetryFilterString, type ActivityInterceptorsFactory, type LogLevel, type RuntimeOptions } from '@temporalio/worker';
import type { MetricMeter } from '@temporalio/common';
import type { CpuTurnsObserver } from '../lib/cpu-turns';
import { parseIngestWorkflowId } from '../lib/ids';
import { isDiskFault } from '../lib/errors';
import type { Logger } from '../lib/logger';

/**
 * The worker's logs and metrics. Metrics go through the Temporal runtime's Prometheus exporter, so the
 * SDK's own (task queue latency, slots, failures) and Cairn's (stage durations, memories indexed) are
 * scraped from one endpoint. Logs are pino JSON carrying the workflow, job and activity they belong to.
 */
export function runtimeOptions(log: Logger, metricsAddress?: string): RuntimeOptions {
  return {
    logger: temporalLogger(log),
    telemetryOptions: {
      // The SDK core's own warnings (a failed poll, a slow workflow task) reach the same logger as
      // JSON lines with the rest, not stderr in another format.
      logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'WARN' }), forward: {} },
      ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress, countersTotalSuffix: true, unitSuffix: true } } } : {}),
    },
  };
}

/**
 * The SDK core warns of every workflow task that took over 5 s (TMPRL1104). A small job's stages run
 * as local activities inside its workflow task, which the SDK extends every 8 s (80% of the task's
 * 10 s timeout) while they run: under a burst of jobs on a busy worker that is routine, and each would
 * warn. Raised to the task timeout, so the warning means a task that outran it; an operator's own
 * TEMPORAL_WORKFLOW_TASK_DURATION_WARN_SECONDS is kept. Set before the first workflow task (read once).
 */
export function quietRoutineWorkflowTaskWarnings(env: NodeJS.ProcessEnv = process.env): void {
  env.TEMPORAL_WORKFLOW_TASK_DURATION_WARN_SECONDS ??= '10';
}

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The SDK's notices that are expected here: the waited-on queue's worker runs activities only, and the
 * SDK warns of that at every start. Logged at debug.
 */
export const expectedSdkNotice = (message: string) => message === 'No workflows registered, not polling for workflow tasks';

/** The SDK's workflow and activity logs already carry workflowId, runId and activityType in their meta. */
export function temporalLogger(log: Logger, now: () => number = Date.now): DefaultLogger {
  const level = (log.level === 'silent' ? 'ERROR' : log.level === 'fatal' ? 'ERROR' : log.level.toUpperCase()) as LogLevel;
  const repeats = new RepeatedLines(now);
  return new DefaultLogger(level, (entry) => {
    // During a Temporal outage each of the worker's pollers reports every retry ("gRPC call
    // poll_activity_task_queue retried 7 times"): some 600 lines in 6 minutes. One line of each kind a
    // minute, saying how many were left out, keeps the outage visible without burying everything else.
    const suppressed = RETRY_REPORT.test(entry.message) ? repeats.admit(entry.message.replace(/\d+/g, 'N')) : 0;
    if (suppressed === undefined) return;
    // The SDK passes failures as `error` (or `failure`); pino serialises an Error only under `err`: the
    // message and stack were logged as {}.
    const { error, failure, ...meta } = (entry.meta ?? {}) as Record<string, unknown>;
    const err = error instanceof Error ? error : failure instanceof Error ? failure : undefined;
    const rest = { ...meta, ...(err ? { err } : { ...(error === undefined ? {} : { error }), ...(failure === undefined ? {} : { failure }) }) };
    log[expectedSdkNotice(entry.message) ? 'debug' : PINO_LEVEL[entry.level]]({ ...rest, ...(suppressed ? { similar_left_out: suppressed } : {}), source: 'temporal' }, entry.message);
  });
}

/** The SDK core's report of a call it is retrying. */
const RETRY_REPORT = /retried \d+ times/;

/** One line of a kind per window: admit answers how many of the kind were left out since, or undefined to leave this one out. */
class RepeatedLines {
  private readonly seen = new Map<string, { at: number; left: number }>();
  constructor(private readonly now: () => number, private readonly windowMs = 60_000) {}

  admit(kind: string): number | undefined {
    const at = this.now();
    const last = this.seen.get(kind);
    if (last && at - last.at < this.windowMs) {
      last.left += 1;
      return undefined;
    }
    this.seen.set(kind, { at, left: 0 });
    if (this.seen.size > 1000) this.seen.delete(this.seen.keys().next().value!);
    return last?.left ?? 0;
  }
}

/**
 * CPU turns (lib/cpu-turns.ts) on the worker's metrics: how many parse and extract pieces wait for the
 * worker's CPU now, and how long each waited. A wait that keeps growing means this worker takes more
 * CPU-bound work than it has cores for: another worker, or fewer concurrent activities, would help.
 */
export function cpuTurnsTelemetry(meter: MetricMeter): CpuTurnsObserver {
  const waiting = meter.createGauge('cairn_cpu_turns_waiting', 'int', 'pieces', 'Parse and local extraction pieces waiting for their turn on the worker CPU');
  const waited = meter.createHistogram('cairn_cpu_turn_wait', 'float', 'ms', 'Time a parse or local extraction piece waited for its turn on the worker CPU');
  return { waiting: (pieces) => waiting.set(pieces), waited: (ms) => waited.record(ms) };
}

/** Failure types that are the input's fault (lib/errors.ts codes), not the system's. */
const REFUSALS = new Set(['bad_input', 'payload_too_large', 'unsupported_media_type', 'not_found', 'conflict', 'forbidden']);

/** Times every activity (a pipeline stage or backfill batch), counts memories indexed, logs with ids. */
export function activityTelemetry(log: Logger): ActivityInterceptorsFactory {
  return (ctx) => {
    const { info } = ctx;
    const workflowId = info.workflowExecution?.workflowId ?? '';
    const activityLog = log.child({
      workflowId,
      runId: info.workflowExecution?.runId,
      jobId: parseIngestWorkflowId(workflowId)?.jobId,
      activityType: info.activityType,
      attempt: info.attempt,
    });
    const meter = ctx.metricMeter;
    const durations = meter.createHistogram('cairn_activity_duration', 'int', 'ms', 'Duration of Cairn activities: pipeline stages and backfill batches');
    const indexed = meter.createCounter('cairn_memories_indexed', 'memories', 'Memories written to Elasticsearch by the index stage');
    return {
      inbound: {
        async execute(input, next) {
          const started = Date.now();
          activityLog.debug('activity started');
          try {
            const result = await next(input);
            const ms = Date.now() - started;
            durations.record(ms, { outcome: 'completed' });
            const count = (result as { indexed?: unknown } | undefined)?.indexed;
            if (info.activityType === 'indexMemories' && typeof count === 'number') indexed.add(count);
            activityLog.info({ durationMs: ms }, 'activity completed');
            return result;
          } catch (error) {
            const ms = Date.now() - started;
            durations.record(ms, { outcome: 'failed' });
            // Input refused for good (a private URL, a file that is no PDF) is the caller's, expected:
            // its reason at info, without a stack. Anything else may be ours: a warning with it.
            if (error instanceof ApplicationFailure && error.nonRetryable && REFUSALS.has(error.type ?? '')) {
              activityLog.info({ durationMs: ms, refused: { code: error.type, message: error.message } }, 'activity refused its input');
            } else if (isDiskFault(error)) {
              activityLog.error({ durationMs: ms, err: error }, "activity failed: Cairn's disk reports an I/O error, which an operator must check; the job waits for it");
            } else {
              activityLog.warn({ durationMs: ms, err: error }, 'activity failed');
            }
            throw error;
          }
        },
      },
    };
  };
}
