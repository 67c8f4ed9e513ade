import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync, promises as fs, writeSync, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import { isatty } from 'node:tty';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import split2 from 'split2';
import { InputError, JobsFileError } from '../../shared/errors.js';
import { createLineAssembler, lineTooLong, maxLineBytes, type LogicalLine } from './jobs-file.js';
import {
  commandId,
  createScanAccumulator,
  lastSelectableLine,
  selects,
  type FileScan,
  type PhaseSpec,
  type PlannedCommand,
  type SplitPreset,
} from './plan.js';

/**
 * Streams jobs files from disk with split2: constant memory whatever the file's size.
 * The file is read as bytes and handed to split2 as latin1 text (one char per byte), so the
 * pure parser can check UTF-8 itself and name the line of a bad byte.
 */

export interface ReadOptions {
  /** Name used in messages (the path as the user gave it). Default: the path. */
  displayName?: string;
  /** Sees every raw chunk, e.g. to hash or snapshot the file while it is read. */
  onChunk?: (chunk: Buffer) => void;
}

/**
 * `-` (as for most Unix tools) and /dev/stdin are standard input, read from descriptor 0 itself:
 * opening /dev/stdin fails (ENXIO) when it is a socket, as a parent process's pipe often is.
 */
function isStandardInput(path: string): boolean {
  return path === '-' || path === '/dev/stdin';
}

function checkStandardInput(name: string): Stats {
  let stat;
  try {
    stat = fstatSync(0);
  } catch (error) {
    throw new InputError('jobs-file', `cannot read jobs file ${name}: standard input is closed`, { cause: error });
  }
  if (isatty(0)) {
    throw new InputError('jobs-file', `jobs file ${name} is standard input, a terminal here; pipe the jobs in (generate-jobs | tasker run -) or redirect them (tasker run - < jobs.sh)`);
  }
  return stat;
}

async function checkReadable(path: string, name: string): Promise<Stats> {
  if (isStandardInput(path)) return checkStandardInput(name);
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError('jobs-file', `jobs file not found: ${name}`, { cause: error });
    if (code === 'EACCES') throw new InputError('jobs-file', `jobs file not readable (permission denied): ${name}`, { cause: error });
    throw new InputError('jobs-file', `cannot read jobs file ${name}: ${(error as Error).message}`, { cause: error });
  }
  if (stat.isDirectory()) throw new InputError('jobs-file', `${name} is a directory; give the jobs file inside it`);
  return stat;
}

/**
 * A named pipe (`tasker run <(generate-jobs)`, `mkfifo`) is read through the event loop: a
 * blocking open() would hold a thread-pool thread until some writer appears, and keep even an
 * interrupted tasker from exiting.
 */
function openSource(path: string, stat: Stats): Readable {
  // Descriptor 0 stays open when the stream ends (libuv never closes 0-2; autoClose: false).
  const stdin = isStandardInput(path);
  if (stat.isFIFO() || (stdin && stat.isSocket())) {
    return new Socket({ fd: stdin ? 0 : openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
  }
  return stdin ? createReadStream('', { fd: 0, autoClose: false, highWaterMark: 256 * 1024 }) : createReadStream(path, { highWaterMark: 256 * 1024 });
}

export async function* readLogicalLines(path: string, options: ReadOptions = {}): AsyncGenerator<LogicalLine> {
  const name = options.displayName ?? path;
  const stat = await checkReadable(path, name);
  const assembler = createLineAssembler(name);
  const toLatin1 = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding, callback) {
      options.onChunk?.(chunk);
      callback(null, chunk.toString('latin1'));
    },
  });
  // writableObjectMode keeps the latin1 strings as strings; split2's decoder passes strings through.
  const splitter = split2(/\r?\n/, { maxLength: maxLineBytes, writableObjectMode: true });
  const source = openSource(path, stat);
  const flowing = pipeline(source, toLatin1, splitter);
  // The consumer may stop early (a phase that ends before the file does): that aborts the pipeline on purpose.
  flowing.catch(() => undefined);
  let line = 0;
  try {
    for await (const raw of splitter as AsyncIterable<string>) {
      line++;
      const entry = assembler.push(line, raw);
      if (entry !== undefined) yield entry;
    }
  } catch (error) {
    if (error instanceof JobsFileError) throw error;
    if (error instanceof Error && error.message === 'maximum buffer reached') {
      throw new JobsFileError(name, line + 1, lineTooLong(), { cause: error });
    }
    throw new InputError('jobs-file', `cannot read jobs file ${name}: ${(error as Error).message}`, { cause: error });
  } finally {
    source.destroy();
  }
  assembler.end(line);
}

/**
 * One pass over a jobs file: validates every line and collects what planning needs.
 * `copyTo`, when given, receives a byte-exact copy (the run's snapshot of its input);
 * `onCommand` sees every command (for checks that must not cost another pass).
 */
export async function scanJobsFile(
  path: string,
  index: number,
  split: SplitPreset | undefined,
  options: { displayName?: string; copyTo?: string; onCommand?: (command: { line: number; text: string }) => void } = {},
): Promise<FileScan> {
  const name = options.displayName ?? path;
  const hash = createHash('sha256');
  const accumulator = createScanAccumulator(index, name, split);
  // Synchronous writes keep the copy's chunks in order without buffering them in memory.
  const copy = options.copyTo === undefined ? undefined : openSync(options.copyTo, 'w');
  try {
    const lines = readLogicalLines(path, {
      displayName: name,
      onChunk: (chunk) => {
        hash.update(chunk);
        if (copy !== undefined) writeSync(copy, chunk);
      },
    });
    for await (const entry of lines) {
      accumulator.add(entry);
      if (entry.kind === 'command') options.onCommand?.(entry);
    }
  } finally {
    if (copy !== undefined) closeSync(copy);
  }
  return accumulator.result(hash.digest('hex'));
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(openSource(path, await checkReadable(path, path)), hash);
  return hash.digest('hex');
}

/** Streams the commands of one phase from its file, in file order. */
export async function* readPhaseCommands(
  phase: PhaseSpec,
  path: string,
  displayName: string,
): AsyncGenerator<PlannedCommand> {
  const stopAfter = lastSelectableLine(phase.selector);
  for await (const entry of readLogicalLines(path, { displayName })) {
    if (entry.line > stopAfter) return;
    if (entry.kind !== 'command' || !selects(phase.selector, entry.line, entry.text)) continue;
    yield { id: commandId(phase.fileIndex, entry.line), file: displayName, line: entry.line, command: entry.text };
  }
}
