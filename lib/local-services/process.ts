import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** A long-running child process whose output goes to a log file we can quote when it fails. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

export function startLogged(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  options: SpawnOptions = {},
): ManagedProcess {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(command, args, {
    ...options,
    stdio: ['ignore', log, log],
    // Own process group, so a stop reaches grandchildren (runuser → java) and Ctrl-C in the
    // terminal does not kill the service before we have shut it down in order.
    detached: true,
  });
  fs.closeSync(log);
  return {
    name,
    child,
    logFile,
    stop: () => stopProcessGroup(child),
  };
}

export async function stopProcessGroup(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child.pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function tailFile(file: string, lines = 20): string {
  try {
    const content = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return content.slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

/** Runs a command to completion, streaming its output to ours so first-run installs show progress. */
export function runVisible(command: string, args: string[], options: SpawnOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    child.on('error', (error) => reject(new Error(`${command} could not be run: ${error.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with code ${code}`)),
    );
  });
}

export function runCapture(command: string, args: string[], options: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let output = '';
    child.stdout!.on('data', (data) => (output += data));
    child.stderr!.on('data', (data) => (output += data));
    child.on('error', (error) => reject(new Error(`${command} could not be run: ${error.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${output.trim()}`)),
    );
  });
}

/** Polls `check` until it holds, failing with `onTimeout`'s explanation after `timeoutMs`, or at once if `child` (the process being waited for) exits first. */
export async function waitUntilReady(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs, intervalMs = 500, onTimeout }: { timeoutMs: number; intervalMs?: number; onTimeout: () => string },
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Ended by a signal (killed, or out of memory), a process has no exit code: only a signal code.
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      const how = child.exitCode !== null ? `with code ${child.exitCode}` : `on ${child.signalCode}`;
      throw new Error(`${what} exited ${how} before it was ready. ${onTimeout()}`);
    }
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`${what} did not start within ${Math.round(timeoutMs / 1000)} s. ${onTimeout()}`);
}

/**
 * Runs a process we started (its own session, so on Linux its own scheduler autogroup) at a lower
 * CPU priority. Linux shares the CPU fairly between autogroups first and applies a nice value only
 * among the processes of one group, so a plain `nice` on the worker did not make it yield to
 * Temporal or Elasticsearch, each in a group of its own: the group's nice (/proc/PID/autogroup) does.
 * Elsewhere (no autogroups, or macOS) the process's nice value is what counts. Best effort: a system
 * that refuses either keeps the default priority.
 */
export function lowerCpuPriority(pid: number, nice: number): void {
  try {
    os.setPriority(pid, nice);
  } catch {
    // not permitted here: keep the default
  }
  try {
    fs.writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch {
    // no autogroups on this system
  }
}
