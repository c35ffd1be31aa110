import fs from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { __cairnServices?: { stop(): Promise<void> } }).__cairnServices;
  if (process.env.CAIRN_TEST_WORKFLOW_BUNDLE) fs.rmSync(process.env.CAIRN_TEST_WORKFLOW_BUNDLE, { force: true });
  if (process.env.CAIRN_KEEP_SERVICES !== 'true') await services?.stop();
}
