import { isUtf8 } from 'node:buffer';
import { maxCommandBytes, oversizedCommandBytes } from '../../shared/broker/messages.js';
import { JobsFileError } from '../../shared/errors.js';

/**
 * Pure parsing of jobs files: one shell command per line, continued by a trailing backslash as
 * in bash. A NUL byte, invalid UTF-8 or a command over 1 MiB (it must fit in one message to the
 * workers) is an error naming the file and line.
 */

/**
 * Longest line accepted, and longest command (continuations joined; measured as JSON in its
 * message, so quotes, backslashes and control characters count double or more). A line longer than
 * this is a data blob, not a command.
 */
export const maxLineBytes = maxCommandBytes;

export type LogicalLine =
  | { kind: 'command'; line: number; text: string }
  | { kind: 'comment'; line: number; text: string };

/** Decodes one raw line (latin1-encoded bytes) to text, rejecting NUL bytes and invalid UTF-8. */
export function decodeRawLine(file: string, line: number, raw: string): string {
  const bytes = Buffer.from(raw, 'latin1');
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    throw new JobsFileError(file, line, `NUL byte at column ${nul + 1}; a jobs file must be text (is this a binary file?)`);
  }
  if (!isUtf8(bytes)) {
    throw new JobsFileError(file, line, 'invalid UTF-8; save the jobs file as UTF-8 text');
  }
  const text = bytes.toString('utf8');
  // split2 strips "\r\n"; a lone "\r" can still end the last line of a CRLF file without a final newline.
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

function endsWithContinuation(text: string): boolean {
  let backslashes = 0;
  for (let i = text.length - 1; i >= 0 && text[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 1;
}

function isCommentOrBlank(text: string): 'blank' | 'comment' | undefined {
  const trimmed = text.trimStart();
  if (trimmed === '') return 'blank';
  if (trimmed.startsWith('#')) return 'comment';
  return undefined;
}

export interface LineAssembler {
  /** Feeds raw line number `line` (1-based); returns the logical line it completes, if any. */
  push(line: number, raw: string): LogicalLine | undefined;
  /** Call at end of file; throws if a continuation is left open. */
  end(lastLine: number): void;
}

/**
 * Joins raw lines into logical ones. Blank lines are not commands, nor lines whose first
 * non-blank character is `#` (those are reported as comments: `# phase:` markers live in them).
 * CRLF ends are accepted. A line ending in an odd number of backslashes continues on the next,
 * without the backslash and the line break, as bash does. Raw lines arrive as latin1 strings (one
 * char per byte) so that the UTF-8 check sees the bytes; `decodeRawLine` turns them into text.
 */
export function createLineAssembler(file: string): LineAssembler {
  let pending: { line: number; text: string } | undefined;

  return {
    push(line, raw) {
      // split2 checks its limit per read, not per line: check each line here.
      if (raw.length > maxLineBytes) throw new JobsFileError(file, line, lineTooLong());
      let text = decodeRawLine(file, line, raw);
      // Editors on Windows may start the file with a byte-order mark: it is not part of the command.
      if (line === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
      if (pending !== undefined) {
        const joined = pending.text.slice(0, -1) + text;
        if (joined.length > maxLineBytes) {
          throw new JobsFileError(file, pending.line, lineTooLong());
        }
        if (endsWithContinuation(joined)) {
          pending = { line: pending.line, text: joined };
          return undefined;
        }
        const started = pending.line;
        pending = undefined;
        if (joined.trim() === '') return undefined; // continued blank lines: nothing to run
        return checkedCommand(file, started, joined);
      }
      const kind = isCommentOrBlank(text);
      if (kind === 'blank') return undefined;
      if (kind === 'comment') return { kind: 'comment', line, text: text.trim() };
      if (endsWithContinuation(text)) {
        pending = { line, text };
        return undefined;
      }
      return checkedCommand(file, line, text);
    },
    end(lastLine) {
      if (pending !== undefined) {
        throw new JobsFileError(
          file,
          pending.line,
          `the command continues (ends with a backslash) but the file ends at line ${lastLine}; remove the trailing backslash or add the rest of the command`,
        );
      }
    },
  };
}

export function lineTooLong(): string {
  return `line is longer than ${maxLineBytes / 1024 / 1024} MiB; put large data in a file and have the command read it`;
}

/** A command that fits in a message to the workers, or the error naming its line. */
function checkedCommand(file: string, line: number, text: string): LogicalLine {
  const bytes = oversizedCommandBytes(text);
  if (bytes !== undefined) {
    throw new JobsFileError(
      file,
      line,
      `command takes ${bytes} bytes in its message to the workers (as JSON: quotes, backslashes and control characters escaped), more than the ${maxCommandBytes} (1 MiB) a command may; put large data in a file and have the command read it`,
    );
  }
  return { kind: 'command', line, text };
}
