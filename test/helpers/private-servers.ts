import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * What the tests' own servers (a private RabbitMQ node, private redis-servers) have in common:
 * each is a detached process group on 127.0.0.1 and a free port, and stop() leaves no process.
 */

export interface PrivateServer {
  port: number;
  /** Ends the server and everything it started; idempotent. */
  stop(): Promise<void>;
}

/** Resolves when the child has ended, or could not start (no such program). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/** Kills the process group the child leads (spawned detached), then waits for the child. */
export async function killGroup(child: ChildProcess): Promise<void> {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  await exited(child);
}

/** Live processes whose command line mentions `text` (a temporary directory): what stop() must leave none of. */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (args.includes(text)) found.push(`${entry}: ${args.slice(0, 200)}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
