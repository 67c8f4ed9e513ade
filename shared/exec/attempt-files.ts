import { fstatSync, mkdirSync, open, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExecuteRequest } from './executor-contract.js';

/** The files of one attempt, for both executors: its log, the log's directory, a long command's script. */

/** Creates a log's directory the first time it is seen. */
export function logDirMaker(): (logPath: string) => void {
  const made = new Set<string>();
  return (logPath) => {
    const dir = dirname(logPath);
    if (made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    made.add(dir);
  };
}

/** A command too long for one argument goes into a script file beside its log; returns its path. */
export function writeCommandScript(request: ExecuteRequest): string {
  const scriptPath = `${request.logPath}.command.sh`;
  writeFileSync(scriptPath, request.command);
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

