/**
 * `npm run services`: installs (first run) and starts only Temporal and Elasticsearch, for running the
 * API and worker yourself. `npm run services -- --install` installs and exits.
 */
import { loadConfigOrExit } from '../lib/config';
import { ensureLocalServices } from '../lib/local-services';
import { installElasticsearch } from '../lib/local-services/elasticsearch';
import { installTemporalCli } from '../lib/local-services/temporal';
import { installLocalModel } from '../lib/models/install';

async function main() {
  const config = loadConfigOrExit();
  if (process.argv.includes('--install')) {
    const started = Date.now();
    await Promise.all([
      installTemporalCli(config.CAIRN_CACHE_DIR),
      installElasticsearch(config.CAIRN_CACHE_DIR),
      installLocalModel(config.CAIRN_CACHE_DIR),
    ]);
    console.log(`Temporal CLI, Elasticsearch and the embedding model are installed in ${config.CAIRN_CACHE_DIR} (${((Date.now() - started) / 1000).toFixed(1)} s).`);
    return;
  }
  const services = await ensureLocalServices(config);
  console.log('Services are up. Ctrl-C stops them.');
  const stop = async () => {
    await services.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
