import type { Config } from '../config';
import { isElasticsearchUp, startElasticsearch } from './elasticsearch';
import type { ManagedProcess } from './process';
import { isPortOpen } from './ports';
import { startTemporal } from './temporal';

export interface LocalServices {
  /** Processes this call started; services that were already running are reused and not listed. */
  started: ManagedProcess[];
  stop(): Promise<void>;
}

/**
 * Starts whatever local service is configured but not running: Temporal when TEMPORAL_ADDRESS is
 * unset, Elasticsearch when ELASTICSEARCH_URL is unset. Both start in parallel.
 */
export async function ensureLocalServices(config: Config, log: (line: string) => void = console.log): Promise<LocalServices> {
  /** Reuses a service that already answers; otherwise starts it. */
  const ensure = async (name: string, where: string, isUp: () => Promise<boolean>, start: () => Promise<ManagedProcess>) => {
    if (!(await isUp())) return start();
    log(`${name} already running at ${where}; reusing it.`);
    return undefined;
  };
  const tasks: Promise<ManagedProcess | undefined>[] = [];

  if (config.localElasticsearch) {
    tasks.push(
      ensure('Elasticsearch', config.elasticsearchUrl, () => isElasticsearchUp(config.elasticsearchUrl), () =>
        startElasticsearch({
          url: config.elasticsearchUrl,
          port: config.ELASTICSEARCH_PORT,
          cacheDir: config.CAIRN_CACHE_DIR,
          dataDir: config.CAIRN_DATA_DIR,
          heap: config.ELASTICSEARCH_HEAP,
          jit: config.ELASTICSEARCH_JIT,
          log,
        }),
      ),
    );
  } else {
    log(`ELASTICSEARCH_URL is set: using ${config.elasticsearchUrl}, starting nothing.`);
  }

  if (config.localTemporal) {
    tasks.push(
      ensure('Temporal', config.temporalAddress, () => isPortOpen(config.TEMPORAL_PORT), () =>
        startTemporal({
          port: config.TEMPORAL_PORT,
          uiPort: config.TEMPORAL_UI_PORT,
          metricsPort: config.TEMPORAL_METRICS_PORT,
          namespace: config.TEMPORAL_NAMESPACE,
          cacheDir: config.CAIRN_CACHE_DIR,
          dataDir: config.CAIRN_DATA_DIR,
          log,
        }),
      ),
    );
  } else {
    log(`TEMPORAL_ADDRESS is set: using ${config.temporalAddress}, starting nothing.`);
  }

  const results = await Promise.allSettled(tasks);
  const started = results.flatMap((result) => (result.status === 'fulfilled' && result.value ? [result.value] : []));
  const stop = async () => {
    await Promise.all(started.map((proc) => proc.stop()));
  };
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }
  return { started, stop };
}
