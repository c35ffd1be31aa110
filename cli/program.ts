import { Command, InvalidArgumentError } from 'commander';
import { CairnClient } from './client';

/** `cairn`: ingest, follow jobs, search, delete sources, forget users and run backfills against a Cairn API. */
export const program = new Command()
  .name('cairn')
  .description('Command line for a Cairn memory service (talks to its HTTP API)')
  .option('--url <url>', 'Cairn API base URL', process.env.CAIRN_URL ?? 'http://127.0.0.1:8080')
  // No default value here: commander prints defaults in --help, and this one is a secret.
  .option('--key <key>', 'API key (default: $CAIRN_API_KEY)')
  .option('--json', 'print raw JSON answers')
  .option('--timeout <seconds>', 'give up a request the API has not answered in this long', timeoutSeconds, 120);

/** Ctrl-C: requests in flight are abandoned and each command says what it leaves (a second one kills at once). */
export const interruption = new AbortController();
process.once('SIGINT', () => interruption.abort());

export const client = () => {
  const { url, key, timeout } = program.opts<{ url: string; key?: string; timeout: number }>();
  return new CairnClient({ url, key: key ?? process.env.CAIRN_API_KEY, timeoutMs: timeout * 1000, signal: interruption.signal, onRetry: (message) => console.error(message) });
};
export const asJson = () => Boolean(program.opts().json);
export const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));
export const INTERRUPTED_EXIT = 130;

export function count(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('a whole number, 1 or more');
  return parsed;
}

export function seconds(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('a number of seconds');
  return parsed;
}

/** The longest timer Node keeps (2^31 - 1 ms): a longer one fires at once, as 0 does. */
const LONGEST_TIMEOUT_S = Math.floor((2 ** 31 - 1) / 1000);

function timeoutSeconds(value: string): number {
  const parsed = seconds(value);
  if (parsed <= 0 || parsed > LONGEST_TIMEOUT_S) throw new InvalidArgumentError(`a number of seconds, more than 0 and at most ${LONGEST_TIMEOUT_S}`);
  return parsed;
}
