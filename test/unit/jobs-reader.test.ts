import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError, JobsFileError } from '../../shared/errors.js';
import { maxLineBytes, type LogicalLine } from '../../tasker/jobs/jobs-file.js';
import { readLogicalLines, readPhaseCommands, scanJobsFile, sha256File } from '../../tasker/jobs/jobs-reader.js';
import { planPhases, type PlannedCommand } from '../../tasker/jobs/plan.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tasker-jobs-reader-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('readLogicalLines', () => {
  it('reads a CRLF file', async () => {
    const path = write('crlf.sh', '# phase: one\r\necho a\r\n\r\necho b \\\r\n  c\r\n');
    expect(await collect(readLogicalLines(path))).toEqual<LogicalLine[]>([
      { kind: 'comment', line: 1, text: '# phase: one' },
      { kind: 'command', line: 2, text: 'echo a' },
      { kind: 'command', line: 4, text: 'echo b   c' },
    ]);
  });

  it('reads a last line that has no trailing newline (LF and CRLF)', async () => {
    const lf = write('lf.sh', 'echo a\necho b');
    const crlf = write('crlf.sh', 'echo a\r\necho b\r');
    const expected: LogicalLine[] = [
      { kind: 'command', line: 1, text: 'echo a' },
      { kind: 'command', line: 2, text: 'echo b' },
    ];
    expect(await collect(readLogicalLines(lf))).toEqual(expected);
    expect(await collect(readLogicalLines(crlf))).toEqual(expected);
  });

  it('counts blank lines so that line numbers match the file', async () => {
    const path = write('blank.sh', '\n\n\necho four\n\n# six\necho seven\n');
    const lines = await collect(readLogicalLines(path));
    expect(lines.map((entry) => entry.line)).toEqual([4, 6, 7]);
  });

  it('preserves a command of nearly 1 MiB exactly, multi-byte characters included', async () => {
    const payload = 'é✓x'.repeat(170_000); // 1.02 MB of UTF-8, crossing several read chunks
    const command = `echo ${payload}`;
    const path = write('big.sh', `echo before\n${command}\necho after\n`);
    const lines = await collect(readLogicalLines(path));
    expect(lines).toHaveLength(3);
    expect(lines[1]).toEqual({ kind: 'command', line: 2, text: command });
    expect(lines[2]).toEqual({ kind: 'command', line: 3, text: 'echo after' });
  });

  it('rejects a line longer than 1 MiB, naming the file and that line', async () => {
    const path = write('huge.sh', `echo 1\necho 2\necho 3\necho ${'x'.repeat(maxLineBytes + 1024 * 1024)}\necho 5\n`);
    const error = await rejection(collect(readLogicalLines(path, { displayName: 'huge.sh' })));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).file).toBe('huge.sh');
    expect((error as JobsFileError).line).toBe(4);
    expect((error as JobsFileError).message).toMatch(/^huge\.sh:4: line is longer than 1 MiB/);
  });

  it('rejects an overlong first line as line 1', async () => {
    const path = write('huge1.sh', `echo ${'y'.repeat(maxLineBytes + 1024 * 1024)}\n`);
    const error = await rejection(collect(readLogicalLines(path)));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).line).toBe(1);
  });

  it('rejects a line just over 1 MiB that ends inside the read chunk where it crosses the limit', async () => {
    // 3 short lines, then a line of 1 MiB + 1 KiB followed by a newline: the limit must not
    // depend on where the 256 KiB read chunks happen to fall.
    const path = write('just-over.sh', `echo 1\necho 2\necho 3\necho ${'x'.repeat(maxLineBytes + 1024)}\necho 5\n`);
    const error = await rejection(collect(readLogicalLines(path, { displayName: 'just-over.sh' })));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).line).toBe(4);
  });

  it('accepts a command of exactly 1 MiB in its message (its JSON string, quotes included)', async () => {
    const command = `echo ${'k'.repeat(maxLineBytes - 7)}`;
    expect(JSON.stringify(command)).toHaveLength(maxLineBytes);
    const path = write('exact.sh', `${command}\necho next\n`);
    const lines = await collect(readLogicalLines(path));
    expect(lines.map((entry) => [entry.line, entry.text.length])).toEqual([
      [1, maxLineBytes - 2],
      [2, 'echo next'.length],
    ]);
  });

  it('reports a missing file as "jobs file not found" with the display name', async () => {
    const error = await rejection(collect(readLogicalLines(join(dir, 'nope.sh'), { displayName: 'nope.sh' })));
    expect(error).toBeInstanceOf(InputError);
    expect(error).not.toBeInstanceOf(JobsFileError);
    expect((error as InputError).code).toBe('jobs-file');
    expect((error as InputError).exitCode).toBe(2);
    expect((error as InputError).message).toBe('jobs file not found: nope.sh');
  });

  it('reports a directory as an InputError', async () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    const error = await rejection(collect(readLogicalLines(sub)));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/is a directory/);
  });

  it('reports a bad byte with its line from disk', async () => {
    const path = write('bad.sh', Buffer.concat([Buffer.from('echo a\necho b\necho '), Buffer.from([0xff, 0x0a])]));
    const error = await rejection(collect(readLogicalLines(path, { displayName: 'bad.sh' })));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).line).toBe(3);
    expect((error as JobsFileError).message).toMatch(/invalid UTF-8/);
  });

  it('rejects a continuation open at end of file, naming where it started', async () => {
    const path = write('open.sh', 'echo a\necho b \\\n');
    const error = await rejection(collect(readLogicalLines(path, { displayName: 'open.sh' })));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).line).toBe(2);
    expect((error as JobsFileError).message).toMatch(/file ends at line 2/);
  });
});

describe('scanJobsFile', () => {
  it('hashes the exact bytes and counts commands and markers', async () => {
    const content = Buffer.from('echo ✓\r\n# phase: two (tasker)\r\necho b\r\n\r\n', 'utf8');
    const path = write('jobs.sh', content);
    const scan = await scanJobsFile(path, 0, undefined, { displayName: 'jobs.sh' });
    expect(scan.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(scan.sha256).toBe(await sha256File(path));
    expect(scan.path).toBe('jobs.sh');
    expect(scan.index).toBe(0);
    expect(scan.commandCount).toBe(2);
    expect(scan.markers).toEqual([{ line: 2, name: 'two', runsOn: 'tasker', pool: 'default', commandsBefore: 1 }]);
  });

  it('hashes a file larger than one read chunk', async () => {
    const content = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `echo line ${i}`).join('\n'), 'utf8');
    expect(content.length).toBeGreaterThan(256 * 1024);
    const path = write('many.sh', content);
    const scan = await scanJobsFile(path, 3, undefined);
    expect(scan.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(scan.commandCount).toBe(40_000);
  });

  it('writes a byte-identical copy with copyTo', async () => {
    const content = Buffer.concat([
      Buffer.from('echo é\r\n# c\n\n', 'utf8'),
      Buffer.from(`echo ${'z'.repeat(600_000)}\n`, 'utf8'),
      Buffer.from('echo last', 'utf8'),
    ]);
    const path = write('src.sh', content);
    const copy = join(dir, 'copy.sh');
    await scanJobsFile(path, 0, undefined, { copyTo: copy });
    expect(readFileSync(copy).equals(content)).toBe(true);
  });
});

describe('readPhaseCommands', () => {
  it('streams the commands of each marked phase with stable ids', async () => {
    const path = write('phased.sh', ['echo pre', '# phase: build (tasker)', 'make a', '', 'make b', '# phase: run', 'run 1 \\', '  --x', 'run 2'].join('\n'));
    const scan = await scanJobsFile(path, 1, undefined, { displayName: 'phased.sh' });
    const phases = planPhases([scan], undefined);
    expect(phases.map((phase) => [phase.name, phase.runsOn, phase.commandCount])).toEqual([
      ['phased.sh', 'workers', 1],
      ['build', 'tasker', 2],
      ['run', 'workers', 2],
    ]);
    const byPhase: PlannedCommand[][] = [];
    for (const phase of phases) byPhase.push(await collect(readPhaseCommands(phase, path, 'phased.sh')));
    expect(byPhase).toEqual([
      [{ id: 'f2-L1', file: 'phased.sh', line: 1, command: 'echo pre' }],
      [
        { id: 'f2-L3', file: 'phased.sh', line: 3, command: 'make a' },
        { id: 'f2-L5', file: 'phased.sh', line: 5, command: 'make b' },
      ],
      [
        { id: 'f2-L7', file: 'phased.sh', line: 7, command: 'run 1   --x' },
        { id: 'f2-L9', file: 'phased.sh', line: 9, command: 'run 2' },
      ],
    ]);
  });

  it('with --split makita, each phase streams exactly commandCount commands, together all of them once', async () => {
    const lines = [
      '# version 1.generated.example',
      'mkdir output',
      'python scripts/data_describe.py data/A.csv -o output/simulation/A/descriptives/data_stats_A.json',
      'python -m asreview simulate data/A.csv -o output/simulation/A/state_files/sim_A_1.asreview --seed 1',
      'python -m asreview metrics output/simulation/A/state_files/sim_A_1.asreview -o output/simulation/A/metrics/m1.json',
      'mkdir output/simulation/B/',
      '# simulate: only a comment',
      'python -m asreview simulate data/B.csv \\',
      '  -o output/simulation/B/state_files/sim_B_1.asreview',
      'python -m asreview metrics output/simulation/B/state_files/sim_B_1.asreview -o output/simulation/B/metrics/m1.json',
      'python scripts/merge_metrics.py -s output/simulation/*/metrics/ -o output/tables/metrics/metrics.csv',
    ];
    const path = write('makita.sh', `${lines.join('\r\n')}\r\n`);
    const scan = await scanJobsFile(path, 0, 'makita', { displayName: 'jobs.sh' });
    const phases = planPhases([scan], 'makita');
    const streamed: PlannedCommand[][] = [];
    for (const phase of phases) streamed.push(await collect(readPhaseCommands(phase, path, 'jobs.sh')));
    expect(phases.map((phase) => phase.commandCount)).toEqual(streamed.map((commands) => commands.length));
    expect(streamed.map((commands) => commands.map((command) => command.id))).toEqual([
      ['f1-L2', 'f1-L3', 'f1-L6'],
      ['f1-L4', 'f1-L8'],
      ['f1-L5', 'f1-L10', 'f1-L11'],
    ]);
    expect(streamed[1]?.[1]?.command).toBe('python -m asreview simulate data/B.csv   -o output/simulation/B/state_files/sim_B_1.asreview');
  });
});
