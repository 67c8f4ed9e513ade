import { describe, expect, it } from 'vitest';
import { InputError, JobsFileError } from '../../shared/errors.js';
import { createLineAssembler, type LogicalLine } from '../../tasker/jobs/jobs-file.js';
import {
  commandId,
  createScanAccumulator,
  lastSelectableLine,
  parseMarker,
  phaseNameOf,
  planPhases,
  selects,
  type FileScan,
  type PhaseSpec,
  type SplitPreset,
} from '../../tasker/jobs/plan.js';

function logicalLines(lines: readonly string[], file = 'jobs.sh'): LogicalLine[] {
  const assembler = createLineAssembler(file);
  const out: LogicalLine[] = [];
  for (const [i, text] of lines.entries()) {
    const entry = assembler.push(i + 1, Buffer.from(text, 'utf8').toString('latin1'));
    if (entry !== undefined) out.push(entry);
  }
  assembler.end(lines.length);
  return out;
}

function scan(lines: readonly string[], index = 0, path = 'jobs.sh', split?: SplitPreset): FileScan {
  const accumulator = createScanAccumulator(index, path, split);
  for (const entry of logicalLines(lines, path)) accumulator.add(entry);
  return accumulator.result('0'.repeat(64));
}

/** The commands a phase picks, streamed the way readPhaseCommands does. */
function selected(phase: PhaseSpec, lines: readonly string[]): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  for (const entry of logicalLines(lines)) {
    if (entry.line > lastSelectableLine(phase.selector)) break;
    if (entry.kind === 'command' && selects(phase.selector, entry.line, entry.text)) out.push({ line: entry.line, text: entry.text });
  }
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

describe('commandId', () => {
  it('is f<fileNo>-L<line>, with 1-based file numbers', () => {
    expect(commandId(0, 42)).toBe('f1-L42');
    expect(commandId(2, 1)).toBe('f3-L1');
  });
});

describe('parseMarker', () => {
  it('parses a marker run by the workers by default', () => {
    expect(parseMarker('j', 1, '# phase: simulate')).toEqual({ name: 'simulate', runsOn: 'workers', pool: 'default' });
  });

  it('parses (tasker) and (workers), case-insensitively', () => {
    expect(parseMarker('j', 1, '# phase: setup (tasker)')).toEqual({ name: 'setup', runsOn: 'tasker', pool: 'default' });
    expect(parseMarker('j', 1, '# phase: run it (workers)')).toEqual({ name: 'run it', runsOn: 'workers', pool: 'default' });
    expect(parseMarker('j', 1, '#PHASE:Setup(TASKER)')).toEqual({ name: 'Setup', runsOn: 'tasker', pool: 'default' });
    expect(parseMarker('j', 1, '  #  Phase :  Big Step  ( Workers )  ')).toEqual({ name: 'Big Step', runsOn: 'workers', pool: 'default' });
  });

  it('returns undefined for other comments', () => {
    expect(parseMarker('j', 1, '# just a comment')).toBeUndefined();
    expect(parseMarker('j', 1, '# phase one')).toBeUndefined();
    expect(parseMarker('j', 1, '# the phase: is mentioned late')).toBeUndefined();
  });

  it('rejects an unknown runner, naming file and line', () => {
    const error = thrown(() => parseMarker('jobs.sh', 17, '# phase: build (foo)'));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).file).toBe('jobs.sh');
    expect((error as JobsFileError).line).toBe(17);
    expect((error as JobsFileError).message).toMatch(/^jobs\.sh:17: .*\(foo\)/);
  });

  it('rejects a marker without a name, naming the line', () => {
    for (const comment of ['# phase:', '# phase:   ', '# phase: (tasker)']) {
      const error = thrown(() => parseMarker('jobs.sh', 4, comment));
      expect(error).toBeInstanceOf(JobsFileError);
      expect((error as JobsFileError).line).toBe(4);
      expect((error as JobsFileError).message).toMatch(/without a name/);
    }
  });

  it('rejects a name longer than 100 characters', () => {
    expect(parseMarker('j', 1, `# phase: ${'n'.repeat(100)}`)?.name).toHaveLength(100);
    expect(() => parseMarker('j', 1, `# phase: ${'n'.repeat(101)}`)).toThrow(JobsFileError);
  });
});

describe('createScanAccumulator', () => {
  it('counts commands and records markers with the commands before them', () => {
    const result = scan(['echo a', '# phase: b (tasker)', 'echo b1', 'echo b2', '# other', '# phase: c', 'echo c']);
    expect(result.commandCount).toBe(4);
    expect(result.markers).toEqual([
      { line: 2, name: 'b', runsOn: 'tasker', pool: 'default', commandsBefore: 1 },
      { line: 6, name: 'c', runsOn: 'workers', pool: 'default', commandsBefore: 3 },
    ]);
    expect(result.makita).toBeUndefined();
    expect(result.sha256).toBe('0'.repeat(64));
  });

  it('throws on a bad marker, naming its line', () => {
    const error = thrown(() => scan(['echo a', '', '# phase: x (everyone)']));
    expect(error).toBeInstanceOf(JobsFileError);
    expect((error as JobsFileError).line).toBe(3);
  });
});

describe('planPhases without --split', () => {
  it('makes one phase named after the file basename when there are no markers', () => {
    const phases = planPhases([scan(['echo a', 'echo b'], 0, 'some/dir/jobs.txt')], undefined);
    expect(phases).toEqual<PhaseSpec[]>([
      {
        index: 1,
        name: 'jobs.txt',
        runsOn: 'workers',
        pool: 'default',
        fileIndex: 0,
        selector: { kind: 'lines', fromLine: 1, toLine: Number.MAX_SAFE_INTEGER },
        commandCount: 2,
      },
    ]);
  });

  it('names the phase of standard input "stdin" and of a process substitution "jobs", not "-" or "63"', () => {
    for (const path of ['-', '/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']) expect(phaseNameOf(path)).toBe('stdin');
    for (const path of ['/dev/fd/63', '/proc/self/fd/11', '/proc/4242/fd/63']) expect(phaseNameOf(path)).toBe('jobs');
    expect(phaseNameOf('some/dir/63')).toBe('63'); // a real file named 63 keeps its name
    const phases = planPhases([scan(['echo a'], 0, '/dev/fd/63'), scan(['echo b'], 1, '-')], undefined);
    expect(phases.map((phase) => phase.name)).toEqual(['jobs', 'stdin']);
  });

  it('splits a file at its markers; lines before the first marker form their own phase', () => {
    const lines = ['echo pre1', 'echo pre2', '# phase: setup (tasker)', 'mkdir out', '# phase: work', 'run 1', 'run 2', 'run 3'];
    const phases = planPhases([scan(lines, 0, 'jobs.sh')], undefined);
    expect(phases.map((phase) => ({ index: phase.index, name: phase.name, runsOn: phase.runsOn, commandCount: phase.commandCount }))).toEqual([
      { index: 1, name: 'jobs.sh', runsOn: 'workers', commandCount: 2 },
      { index: 2, name: 'setup', runsOn: 'tasker', commandCount: 1 },
      { index: 3, name: 'work', runsOn: 'workers', commandCount: 3 },
    ]);
    expect(phases.map((phase) => selected(phase, lines).map((command) => command.text))).toEqual([
      ['echo pre1', 'echo pre2'],
      ['mkdir out'],
      ['run 1', 'run 2', 'run 3'],
    ]);
  });

  it('drops empty phases and renumbers the rest', () => {
    const lines = ['# phase: empty', '# phase: one', 'echo 1', '# phase: also empty (tasker)', '', '# comment', '# phase: two', 'echo 2'];
    const phases = planPhases([scan(lines)], undefined);
    expect(phases.map((phase) => [phase.index, phase.name, phase.commandCount])).toEqual([
      [1, 'one', 1],
      [2, 'two', 1],
    ]);
    expect(phases.map((phase) => selected(phase, lines).map((command) => command.line))).toEqual([[3], [8]]);
  });

  it('makes one phase per file, in order, with the file index', () => {
    const scans = [
      scan(['echo a'], 0, 'first.sh'),
      scan(['# only a comment', ''], 1, 'empty.sh'),
      scan(['echo c1', 'echo c2'], 2, 'x/third.sh'),
    ];
    const phases = planPhases(scans, undefined);
    expect(phases.map((phase) => [phase.index, phase.name, phase.fileIndex, phase.commandCount])).toEqual([
      [1, 'first.sh', 0, 1],
      [2, 'third.sh', 2, 2],
    ]);
  });

  it('throws InputError when no file has any command', () => {
    const error = thrown(() => planPhases([scan(['# a', '', '# phase: x'], 0, 'a.sh'), scan([], 1, 'b.sh')], undefined));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).code).toBe('plan');
    expect((error as InputError).message).toMatch(/nothing to run: a\.sh, b\.sh/);
  });
});

/** A makita-shaped jobs.sh; each line says which part it belongs to (null: not a command). */
const makitaLines: readonly (readonly [string, 1 | 2 | 3 | null])[] = [
  ['# version 1.generated.example', null],
  ['# this script will simulate everything', null],
  ['mkdir output', 1],
  ['mkdir output/simulation', 1],
  ['mkdir output/simulation/Smid_2020/', 1],
  ['mkdir output/simulation/Smid_2020/descriptives', 1],
  ['python scripts/data_describe.py data/Smid_2020.csv -o output/simulation/Smid_2020/descriptives/data_stats_Smid_2020.json', 1],
  ['', null],
  ['mkdir output/simulation/Smid_2020/state_files', 1],
  ['python -m asreview simulate data/Smid_2020.csv -o output/simulation/Smid_2020/state_files/sim_Smid_2020_31.asreview --seed 165', 2],
  ['python -m asreview metrics output/simulation/Smid_2020/state_files/sim_Smid_2020_31.asreview -o output/simulation/Smid_2020/metrics/metrics_sim_Smid_2020_31.json', 3],
  ['python -m asreview simulate data/Smid_2020.csv -o output/simulation/Smid_2020/state_files/sim_Smid_2020_121.asreview --seed 165', 2],
  ['python -m asreview metrics output/simulation/Smid_2020/state_files/sim_Smid_2020_121.asreview -o output/simulation/Smid_2020/metrics/metrics_sim_Smid_2020_121.json', 3],
  ['# phase: ignored because the preset decides', null],
  ['mkdir output/simulation/Other/', 1],
  ['python scripts/data_describe.py data/Other.csv -o output/simulation/Other/descriptives/data_stats_Other.json', 1],
  ['python -m asreview simulate data/Other.csv -o output/simulation/Other/state_files/sim_Other_1.asreview --seed 7', 2],
  ['# simulate comment between the last simulate and the rest', null],
  ['python -m asreview metrics output/simulation/Other/state_files/sim_Other_1.asreview -o output/simulation/Other/metrics/metrics_sim_Other_1.json', 3],
  ['mkdir output/figures', 3],
  ['python scripts/get_plot.py -s output/simulation/Smid_2020/state_files/ -o output/figures/plot_recall_sim_Smid_2020.png', 3],
  ['python scripts/merge_metrics.py -s output/simulation/*/metrics/ -o output/tables/metrics/metrics.csv', 3],
];

describe('planPhases with --split makita', () => {
  const lines = makitaLines.map(([text]) => text);
  const expectedLines = (part: 1 | 2 | 3): number[] =>
    makitaLines.flatMap(([, p], i) => (p === part ? [i + 1] : []));

  it('makes setup (tasker), simulate and aggregate (workers) phases with the right commands', () => {
    const phases = planPhases([scan(lines, 0, 'jobs.sh', 'makita')], 'makita');
    expect(phases.map((phase) => [phase.index, phase.name, phase.runsOn])).toEqual([
      [1, 'setup', 'tasker'],
      [2, 'simulate', 'workers'],
      [3, 'aggregate', 'workers'],
    ]);
    for (const [position, part] of ([1, 2, 3] as const).entries()) {
      const phase = phases[position]!;
      const picked = selected(phase, lines);
      expect(picked.map((command) => command.line)).toEqual(expectedLines(part));
      expect(phase.commandCount).toBe(picked.length);
    }
    expect(phases.map((phase) => phase.commandCount)).toEqual([8, 3, 6]);
  });

  it('ignores "simulate" in comments when finding the first and last simulate lines', () => {
    const result = scan(lines, 0, 'jobs.sh', 'makita');
    expect(result.makita?.firstSimulate).toBe(10);
    expect(result.makita?.lastSimulate).toBe(17);
    expect(result.markers).toEqual([]);
  });

  it('counts agree with streaming selection on many generated makita-like files', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const vocabulary = [
      'mkdir out/x',
      'python scripts/data_describe.py d.csv',
      'python -m asreview simulate d.csv -o s.asreview',
      'python -m asreview metrics s.asreview',
      'python scripts/get_plot.py',
      '# simulate in a comment',
      '# mkdir in a comment',
      '',
      'echo mkdir simulate both',
    ];
    for (let round = 0; round < 300; round++) {
      const length = 1 + Math.floor(random() * 25);
      const generated = Array.from({ length }, () => vocabulary[Math.floor(random() * vocabulary.length)]!);
      generated.push('python -m asreview simulate last.csv');
      if (random() < 0.5) generated.unshift(vocabulary[Math.floor(random() * vocabulary.length)]!);
      const phases = planPhases([scan(generated, 0, 'g.sh', 'makita')], 'makita');
      const all = logicalLines(generated).filter((entry) => entry.kind === 'command');
      let total = 0;
      for (const phase of phases) {
        const picked = selected(phase, generated).length;
        expect(phase.commandCount, `round ${round}, phase ${phase.name}:\n${generated.join('\n')}`).toBe(picked);
        total += picked;
      }
      expect(total).toBe(all.length);
    }
  });

  it('drops a part that has no commands', () => {
    const phases = planPhases([scan(['python -m asreview simulate a', 'python -m asreview simulate b'], 0, 'j.sh', 'makita')], 'makita');
    expect(phases.map((phase) => [phase.index, phase.name, phase.commandCount])).toEqual([[1, 'simulate', 2]]);
  });

  it('throws InputError when no command contains "simulate" (comments do not count)', () => {
    const error = thrown(() => planPhases([scan(['# simulate', 'mkdir a', 'echo b'], 0, 'j.sh', 'makita')], 'makita'));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).code).toBe('plan');
    expect((error as InputError).message).toMatch(/j\.sh has no line containing "simulate"/);
  });

  it('throws InputError with two files', () => {
    const scans = [scan(lines, 0, 'a.sh', 'makita'), scan(lines, 1, 'b.sh', 'makita')];
    const error = thrown(() => planPhases(scans, 'makita'));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/exactly one jobs file \(got 2\)/);
  });
});

describe('selects and lastSelectableLine', () => {
  it('takes lines from fromLine (inclusive) to toLine (exclusive)', () => {
    const selector = { kind: 'lines', fromLine: 3, toLine: 6 } as const;
    expect([2, 3, 5, 6].map((line) => selects(selector, line, 'x'))).toEqual([false, true, true, false]);
    expect(lastSelectableLine(selector)).toBe(5);
  });

  it('reads makita files to the end', () => {
    expect(lastSelectableLine({ kind: 'makita', part: 1, firstSimulate: 2, lastSimulate: 4 })).toBe(Number.MAX_SAFE_INTEGER);
  });
});
