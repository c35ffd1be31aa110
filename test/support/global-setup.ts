import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config';
import { ensureLocalServices } from '../../lib/local-services';
import { bundleWorkflows } from '../../worker/create-worker';

/**
 * Starts (or reuses) the real local Temporal and Elasticsearch, and bundles the workflows once for
 * every test file. Services this run started are stopped in global-teardown.
 */
export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const services = await ensureLocalServices(config, (line) => console.log(`\n[test services] ${line}`));
  (globalThis as { __cairnServices?: typeof services }).__cairnServices = services;

  const bundle = await bundleWorkflows();
  const bundleFile = path.join(os.tmpdir(), `cairn-workflows-${process.pid}.js`);
  fs.writeFileSync(bundleFile, bundle.code);
  process.env.CAIRN_TEST_WORKFLOW_BUNDLE = bundleFile;
  process.env.TEMPORAL_ADDRESS = config.temporalAddress;
  process.env.ELASTICSEARCH_URL = config.elasticsearchUrl;
  console.log(`[test services] ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
