import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { runTokenPattern } from '../broker/messages.js';
import type { RunLayout } from './run-layout.js';

/**
 * The run token: a random string the tasker of a distributed run writes into the run's directory
 * and puts into every command message. A worker runs a command only when it reads the same token
 * from the run's directory under its own workdir, which proves it shares the tasker's directory
 * (worker/message/run-directory-check.ts). A path would not do: the same volume may be mounted at different paths,
 * and two unrelated directories may have the same path on two machines.
 */

/** The run's token; created on the run's first distributed session, the same on every resume. */
export async function ensureRunToken(layout: Pick<RunLayout, 'tokenPath'>): Promise<string> {
  const existing = await readRunToken(layout.tokenPath);
  if (existing !== undefined) return existing;
  try {
    // Exclusive: two taskers racing on one run (refused later anyway) still agree on one token.
    await fs.writeFile(layout.tokenPath, `${randomUUID()}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const written = await readRunToken(layout.tokenPath);
  if (written === undefined) throw new Error(`the run token in ${layout.tokenPath} is malformed; remove the file and start the tasker again`);
  return written;
}

/** The token in `path`; undefined when there is no such file, or it holds no token. */
export async function readRunToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
  const token = text.trim();
  return runTokenPattern.test(token) ? token : undefined;
}
