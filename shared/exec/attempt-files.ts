import { closeSync, constants, fchmodSync, fchownSync, fstatSync, mkdirSync, open, openSync, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExecuteRequest } from './executor-contract.js';

/** The files of one attempt, for both executors: its log, the log's directory, a long command's script. */

/**
 * Creates a log's directory the first time it is seen. With `commandGid` (commands run as another
 * user, who creates the logs: shell-runner.ts), the directory is given to that group, writable
 * and set-group-id (2775); through a descriptor opened without following a link, so that nothing
 * but the directory itself changes. A failure to do so is left to show: the runner reports a log
 * it cannot create.
 */
export function logDirMaker(commandGid?: number): (logPath: string) => void {
  const made = new Set<string>();
  return (logPath) => {
    const dir = dirname(logPath);
    if (made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    if (commandGid !== undefined) shareWithGroup(dir, commandGid);
    made.add(dir);
  };
}

function shareWithGroup(dir: string, gid: number): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    if (fstatSync(fd).gid !== gid) fchownSync(fd, -1, gid);
    fchmodSync(fd, 0o2775);
  } catch {
    // another user's directory, or no right to its group: the runner's complaint names the log
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Written without following a link: the log's directory may be writable by the commands' user. */
const newFileFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** A command too long for one argument goes into a script file beside its log; returns its path. */
export function writeCommandScript(request: ExecuteRequest): string {
  const scriptPath = `${request.logPath}.command.sh`;
  const fd = openSync(scriptPath, newFileFlags, 0o644);
  try {
    writeFileSync(fd, request.command);
  } finally {
    closeSync(fd);
  }
  return scriptPath;
}

/**
 * Creates or truncates a log and opens it for the command to write and us to read its tail. A raw
 * descriptor (not a FileHandle, which would close itself on garbage collection).
 */
export function openLogAsync(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'w+', (error, fd) => (error === null ? resolve(fd) : reject(error))));
}

/** The last `tailBytes` of an open log, as text. */
export function readTail(fd: number, tailBytes: number): string {
  const size = fstatSync(fd).size;
  if (size === 0 || tailBytes <= 0) return '';
  const length = Math.min(size, tailBytes);
  const buffer = Buffer.alloc(length);
  const read = readSync(fd, buffer, 0, length, size - length);
  const text = buffer.subarray(0, read).toString('utf8');
  // A multi-byte character cut at the start decodes as U+FFFD: drop it.
  return size > length ? text.replace(/^\uFFFD+/, '') : text;
}

