import { describe, expect, it } from 'vitest';
import { ExitCode, InputError, JobsFileError } from '../../shared/errors.js';
import { createLineAssembler, decodeRawLine, maxLineBytes, type LogicalLine } from '../../tasker/jobs/jobs-file.js';

/** Raw lines reach the parser as latin1 strings, one char per byte. */
function raw(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** Feeds UTF-8 text lines (without line breaks) through an assembler, as the reader does. */
function assemble(lines: readonly string[], file = 'jobs.sh'): LogicalLine[] {
  const assembler = createLineAssembler(file);
  const out: LogicalLine[] = [];
  for (const [i, text] of lines.entries()) {
    const entry = assembler.push(i + 1, raw(text));
    if (entry !== undefined) out.push(entry);
  }
  assembler.end(lines.length);
  return out;
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}

function expectJobsFileError(error: unknown, file: string, line: number, messagePart: RegExp): void {
  expect(error).toBeInstanceOf(JobsFileError);
  expect(error).toBeInstanceOf(InputError);
  const jobsError = error as JobsFileError;
  expect(jobsError.file).toBe(file);
  expect(jobsError.line).toBe(line);
  expect(jobsError.exitCode).toBe(ExitCode.usage);
  expect(jobsError.exitCode).toBe(2);
  expect(jobsError.code).toBe('jobs-file');
  expect(jobsError.message.startsWith(`${file}:${line}: `)).toBe(true);
  expect(jobsError.message).toMatch(messagePart);
}

describe('decodeRawLine', () => {
  it('decodes UTF-8 text given as latin1 bytes', () => {
    expect(decodeRawLine('f', 1, raw('echo "héllo wörld ✓ 日本"'))).toBe('echo "héllo wörld ✓ 日本"');
  });

  it('strips one trailing carriage return', () => {
    expect(decodeRawLine('f', 1, 'echo a\r')).toBe('echo a');
  });

  it('keeps a carriage return that is not at the end', () => {
    expect(decodeRawLine('f', 1, 'echo a\rb')).toBe('echo a\rb');
  });

  it('rejects a NUL byte, naming file, line and column', () => {
    const error = thrown(() => decodeRawLine('data/jobs.sh', 7, 'echo\u0000x'));
    expectJobsFileError(error, 'data/jobs.sh', 7, /NUL byte at column 5/);
  });

  it('rejects invalid UTF-8, naming file and line', () => {
    // "caf\xe9" is latin1 é: a lone 0xE9 byte is not valid UTF-8.
    const error = thrown(() => decodeRawLine('jobs.txt', 12, 'echo caf\u00e9'));
    expectJobsFileError(error, 'jobs.txt', 12, /invalid UTF-8/);
  });

  it('rejects a truncated multi-byte sequence', () => {
    const bytes = Buffer.from('echo ✓', 'utf8');
    const truncated = bytes.subarray(0, bytes.length - 1).toString('latin1');
    expectJobsFileError(thrown(() => decodeRawLine('j', 3, truncated)), 'j', 3, /invalid UTF-8/);
  });
});

describe('createLineAssembler', () => {
  it('returns commands with their line numbers, skipping blank lines', () => {
    expect(assemble(['echo one', '', '   ', '\t', 'echo two'])).toEqual([
      { kind: 'command', line: 1, text: 'echo one' },
      { kind: 'command', line: 5, text: 'echo two' },
    ]);
  });

  it('reports comments, indented ones included, as comments (trimmed)', () => {
    expect(assemble(['# top', '   # indented', '\t#tabbed  ', 'echo x # trailing'])).toEqual([
      { kind: 'comment', line: 1, text: '# top' },
      { kind: 'comment', line: 2, text: '# indented' },
      { kind: 'comment', line: 3, text: '#tabbed' },
      { kind: 'command', line: 4, text: 'echo x # trailing' },
    ]);
  });

  it('strips the \\r of CRLF line ends', () => {
    expect(assemble(['echo a\r', '\r', '# c\r', 'echo b\r'])).toEqual([
      { kind: 'command', line: 1, text: 'echo a' },
      { kind: 'comment', line: 3, text: '# c' },
      { kind: 'command', line: 4, text: 'echo b' },
    ]);
  });

  it('joins a backslash continuation as bash does, reporting the starting line', () => {
    expect(assemble(['echo start', 'python run.py \\', '  --seed 1 \\', '  --out x', 'echo end'])).toEqual([
      { kind: 'command', line: 1, text: 'echo start' },
      { kind: 'command', line: 2, text: 'python run.py   --seed 1   --out x' },
      { kind: 'command', line: 5, text: 'echo end' },
    ]);
  });

  it('removes backslash and newline with nothing in between (no space added)', () => {
    expect(assemble(['ec\\', 'ho joined'])).toEqual([{ kind: 'command', line: 1, text: 'echo joined' }]);
  });

  it('continues on an odd number of trailing backslashes only', () => {
    expect(assemble(['echo a\\\\', 'echo b'])).toEqual([
      { kind: 'command', line: 1, text: 'echo a\\\\' },
      { kind: 'command', line: 2, text: 'echo b' },
    ]);
    expect(assemble(['echo a\\\\\\', 'b'])).toEqual([{ kind: 'command', line: 1, text: 'echo a\\\\b' }]);
  });

  it('continues across CRLF line ends', () => {
    expect(assemble(['echo a \\\r', 'b\r'])).toEqual([{ kind: 'command', line: 1, text: 'echo a b' }]);
  });

  it('takes a "#" line as part of a continued command, not as a comment', () => {
    expect(assemble(['echo a \\', '# not a comment here'])).toEqual([
      { kind: 'command', line: 1, text: 'echo a # not a comment here' },
    ]);
  });

  it('does not continue a comment that ends in a backslash', () => {
    expect(assemble(['# comment \\', 'echo b'])).toEqual([
      { kind: 'comment', line: 1, text: '# comment \\' },
      { kind: 'command', line: 2, text: 'echo b' },
    ]);
  });

  it('ends a continuation on an empty line', () => {
    expect(assemble(['echo a \\', '', 'echo b'])).toEqual([
      { kind: 'command', line: 1, text: 'echo a ' },
      { kind: 'command', line: 3, text: 'echo b' },
    ]);
  });

  it('rejects a continuation left open at end of file, naming file and the starting line', () => {
    const assembler = createLineAssembler('jobs.sh');
    expect(assembler.push(1, 'echo a')).toEqual({ kind: 'command', line: 1, text: 'echo a' });
    expect(assembler.push(2, 'echo b \\')).toBeUndefined();
    expect(assembler.push(3, '  --more \\')).toBeUndefined();
    const error = thrown(() => assembler.end(3));
    expectJobsFileError(error, 'jobs.sh', 2, /file ends at line 3/);
  });

  it('accepts end of file when no continuation is open', () => {
    const assembler = createLineAssembler('jobs.sh');
    assembler.push(1, 'echo a \\');
    assembler.push(2, 'b');
    expect(() => assembler.end(2)).not.toThrow();
  });

  it('rejects a continued command longer than 1 MiB, naming the line where it starts', () => {
    const assembler = createLineAssembler('long.sh');
    assembler.push(1, 'echo short');
    expect(assembler.push(2, `echo ${'a'.repeat(maxLineBytes / 2)}\\`)).toBeUndefined();
    const error = thrown(() => assembler.push(3, 'b'.repeat(maxLineBytes / 2)));
    expectJobsFileError(error, 'long.sh', 2, /longer than 1 MiB/);
  });

  it('rejects a NUL byte with the raw line number, also inside a continuation', () => {
    const assembler = createLineAssembler('j.sh');
    assembler.push(1, 'echo a \\');
    expectJobsFileError(thrown(() => assembler.push(2, 'b\u0000')), 'j.sh', 2, /NUL byte/);
  });

  it('rejects invalid UTF-8 naming file and line', () => {
    const assembler = createLineAssembler('x/jobs.sh');
    assembler.push(1, raw('echo ✓'));
    expectJobsFileError(thrown(() => assembler.push(2, 'echo \u00ff\u00fe')), 'x/jobs.sh', 2, /invalid UTF-8/);
  });
});
