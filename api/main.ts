import { AcceptJournal, JournalInUseError } from '../lib/accept-journal';
import { loadConfigOrExit, type Config } from '../lib/config';
import type { Logger } from '../lib/logger';
import { createLogger } from '../lib/logger';
import { IngestJobs } from '../lib/jobs';
import { waitForServices } from '../lib/startup';
import { createRuntime, searchDepsOf } from '../lib/runtime';
import { connectTemporal, ensureSearchAttributes } from '../lib/temporal/connect';
import { StaticKeyResolver } from './auth';
import { createApp } from './server';

/** The acceptance journal, unless turned off or held by another API process (which is then said). */
async function openJournal(config: Config, log: Logger): Promise<AcceptJournal | undefined> {
  if (!config.ACCEPT_JOURNAL) return undefined;
  try {
    return await AcceptJournal.open(config.journalDir, log);
  } catch (error) {
    if (!(error instanceof JournalInUseError)) throw error;
    log.warn(`${error.message}: this process accepts jobs without a journal (set ACCEPT_JOURNAL_DIR to give it its own)`);
    return undefined;
  }
}

async function main() {
  const config = loadConfigOrExit();
  const log = createLogger(config.LOG_LEVEL, 'cairn-api');
  await waitForServices(config, log);
  const runtime = await createRuntime(config, log, 'api');
  const temporal = await connectTemporal(config);
  await ensureSearchAttributes(temporal, config.TEMPORAL_NAMESPACE);
  if (config.staticApiKeys.size === 0) log.warn('No API keys configured: set CAIRN_API_KEY or CAIRN_API_KEYS; every request will answer 401.');
  let shuttingDown = false;
  const journal = await openJournal(config, log);
  const jobs = new IngestJobs(temporal.client, runtime.blobs, config, runtime.es, log, journal);
  // Jobs answered 2xx whose start a stopped API process did not see acknowledged, or whose start
  // failed (IngestJobs.start): every 10 s from now, those recorded over 30 s ago are started.
  // One sweep at a time: with Temporal down, each start waits out the client's retries.
  let sweeping: Promise<unknown> | undefined;
  const sweep = () => {
    sweeping ??= jobs
      .resumePendingStarts()
      .then((resumed) => resumed > 0 && log.info({ resumed }, 'started accepted jobs whose start had not been acknowledged'))
      .catch((error) => log.warn({ err: error }, 'could not read the accepted jobs waiting for their start; retrying in 10 s'))
      .finally(() => (sweeping = undefined));
  };
  sweep();
  const sweeps = setInterval(sweep, 10_000);
  const app = createApp({
    es: runtime.es,
    temporal: temporal.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    jobs,
    keys: [new StaticKeyResolver(config.staticApiKeys, config.operatorApiKey)],
    log,
    search: searchDepsOf(runtime),
    extractors: runtime.models.extractors,
    shuttingDown: () => shuttingDown,
    indexSetup: runtime.indexSetup,
  });
  // Express hands the listen callback a failure to bind (a port in use, say) as its argument.
  const server = app.listen(config.PORT, config.HOST, (error?: NodeJS.ErrnoException) => {
    if (!error) {
      log.info({ port: config.PORT }, `API listening on http://${config.HOST}:${config.PORT}`);
      return;
    }
    log.fatal({ err: error }, `API cannot listen on ${config.HOST}:${config.PORT}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`);
    process.exit(1);
  });
  const shutdown = () => {
    log.info({ graceMs: config.SHUTDOWN_GRACE_MS }, 'API shutting down');
    // First a grace period still listening, /readyz answering 503, so a balancer stops sending here
    // before connections are refused (closing at once reset requests already on their way); then no
    // new connections, in-flight requests finish, accepted jobs' starts complete.
    shuttingDown = true;
    setTimeout(() => {
      server.close(async () => {
        clearInterval(sweeps);
        await Promise.all([sweeping, jobs.drain()]);
        await journal?.close();
        await temporal.connection.close();
        await runtime.close();
        process.exit(0);
      });
      // Stopped before everything had finished: not a clean exit.
      setTimeout(() => {
        log.warn('API stopped before its requests and starts had finished');
        process.exit(1);
      }, 10_000).unref();
    }, config.SHUTDOWN_GRACE_MS).unref();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
