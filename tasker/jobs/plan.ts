import { InputError, JobsFileError } from '../../shared/errors.js';
import { defaultPool, isValidPoolName, poolNameRule } from '../../shared/config/names.js';
import type { LogicalLine } from './jobs-file.js';

/**
 * Pure phase planning. A plan never holds the commands themselves: it holds, per phase,
 * which lines of which file belong to it, so a million-line file is streamed again for each
 * phase instead of being kept in memory.
 */

export type RunsOn = 'tasker' | 'workers';
/**
 * Where a phase's commands run, as the plan, the logs, summary.json and the report say it: a
 * workers phase of a local run runs on the tasker's own slots ("local slots"), of a distributed
 * run on the workers. Plan records (run.json, plan.json) keep `RunsOn`: a resume compares them.
 */
export type RunsOnShown = 'tasker' | 'workers' | 'local slots';

export function runsOnShown(runsOn: RunsOn, distributed: boolean): RunsOnShown {
  return runsOn === 'workers' && !distributed ? 'local slots' : runsOn;
}
export type SplitPreset = 'makita';
export const splitPresets: readonly SplitPreset[] = ['makita'];

/** Which commands of a file a phase takes. */
export type Selector =
  /** Commands starting on lines fromLine (inclusive) to toLine (exclusive). */
  | { kind: 'lines'; fromLine: number; toLine: number }
  /** Part 1, 2 or 3 of asreview-cloud's split-file.py, given the first and last `simulate` lines. */
  | { kind: 'makita'; part: MakitaPart; firstSimulate: number; lastSimulate: number };

export type MakitaPart = 1 | 2 | 3;

export interface PhaseSpec {
  /** 1-based position in the plan, after empty phases were dropped. */
  index: number;
  name: string;
  runsOn: RunsOn;
  /**
   * The worker pool whose queue a workers phase goes to: --pool PHASE=POOL, else its marker's
   * `(pool: NAME)`, else `default`. Tasker phases have `default` too and ignore it. Absent
   * from the run.json of a run started before pools: read as `default`.
   */
  pool: string;
  fileIndex: number;
  selector: Selector;
  commandCount: number;
}

export interface PlannedCommand {
  id: string;
  /** The jobs file as the user named it. */
  file: string;
  /** 1-based line where the command starts. */
  line: number;
  command: string;
}

export interface Marker {
  line: number;
  name: string;
  runsOn: RunsOn;
  pool: string;
  /** Commands of the file before this marker. */
  commandsBefore: number;
}

export interface FileScan {
  index: number;
  /** The path as the user gave it. */
  path: string;
  sha256: string;
  commandCount: number;
  markers: Marker[];
  /** Only for --split makita. */
  makita?: MakitaCounts;
}

export interface MakitaCounts {
  firstSimulate?: number;
  lastSimulate?: number;
  /** Part sizes, valid once the whole file was scanned. */
  part1: number;
  part2: number;
  part3: number;
}

/** Stable id of a command: file number and line, e.g. `f1-L42`. Stays the same when a run resumes. */
export function commandId(fileIndex: number, line: number): string {
  return `f${fileIndex + 1}-L${line}`;
}

const markerPattern = /^#\s*phase\s*:(.*)$/i;
const runnerPattern = /^(.*?)\s*\(\s*([^()]*?)\s*\)$/;

export interface ParsedMarker {
  name: string;
  runsOn: RunsOn;
  pool: string;
}

/** What the parentheses of a marker may say: who runs the phase, or the workers' pool. */
function parseRunner(file: string, line: number, said: string): { runsOn: RunsOn; pool: string } {
  const pool = /^pool\s*:\s*(.*)$/i.exec(said);
  if (pool !== null) {
    const name = (pool[1] ?? '').trim();
    if (!isValidPoolName(name)) throw new JobsFileError(file, line, `phase marker names pool "${name}"; a pool name is ${poolNameRule}`);
    return { runsOn: 'workers', pool: name };
  }
  const who = said.toLowerCase();
  if (who !== 'tasker' && who !== 'workers') {
    throw new JobsFileError(file, line, `phase marker says "(${said})"; write "(tasker)" for a phase the tasker runs itself, "(pool: NAME)" for a pool of workers, or nothing for the default pool`);
  }
  return { runsOn: who, pool: defaultPool };
}

/** Parses a `# phase: NAME`, `# phase: NAME (tasker)` or `# phase: NAME (pool: POOL)` comment; undefined for other comments. */
export function parseMarker(file: string, line: number, comment: string): ParsedMarker | undefined {
  const match = markerPattern.exec(comment.trim());
  if (match === null) return undefined;
  let rest = (match[1] ?? '').trim();
  let runner = { runsOn: 'workers' as RunsOn, pool: defaultPool };
  const parenthesized = runnerPattern.exec(rest);
  if (parenthesized !== null) {
    runner = parseRunner(file, line, parenthesized[2] ?? '');
    rest = (parenthesized[1] ?? '').trim();
  }
  if (rest === '') {
    throw new JobsFileError(file, line, 'phase marker without a name; write "# phase: NAME" or "# phase: NAME (tasker)"');
  }
  if (rest.length > 100) {
    throw new JobsFileError(file, line, 'phase name is longer than 100 characters');
  }
  return { name: rest, ...runner };
}

/** Which makita part a command belongs to; mirrors asreview-cloud's split-file.py. */
export function makitaPart(text: string, line: number, firstSimulate: number, lastSimulate: number): MakitaPart {
  if (line < firstSimulate) return 1;
  if (line > lastSimulate) return 3;
  if (text.includes('simulate')) return 2;
  if (text.includes('mkdir') || text.includes('describe')) return 1;
  return 3;
}

export interface ScanAccumulator {
  add(entry: LogicalLine): void;
  result(sha256: string): FileScan;
}

/** Collects what planning needs from one pass over a file, in constant memory (markers aside). */
export function createScanAccumulator(index: number, path: string, split: SplitPreset | undefined): ScanAccumulator {
  let commandCount = 0;
  const markers: Marker[] = [];
  let firstSimulate: number | undefined;
  let lastSimulate: number | undefined;
  let simulateCount = 0;
  let setupBeforeFirst = 0;
  /** mkdir/describe commands seen after the first simulate... */
  let setupSinceFirst = 0;
  /** ...and how many of them came before the latest simulate (those stay in part 1). */
  let setupUpToLast = 0;

  return {
    add(entry) {
      if (entry.kind === 'comment') {
        if (split !== undefined) return; // presets ignore markers: the preset decides the phases
        const marker = parseMarker(path, entry.line, entry.text);
        if (marker !== undefined) markers.push({ ...marker, line: entry.line, commandsBefore: commandCount });
        return;
      }
      commandCount++;
      if (split !== 'makita') return;
      if (entry.text.includes('simulate')) {
        firstSimulate ??= entry.line;
        lastSimulate = entry.line;
        simulateCount++;
        setupUpToLast = setupSinceFirst;
      } else if (firstSimulate === undefined) {
        setupBeforeFirst++;
      } else if (entry.text.includes('mkdir') || entry.text.includes('describe')) {
        setupSinceFirst++;
      }
    },
    result(sha256) {
      const scan: FileScan = { index, path, sha256, commandCount, markers };
      if (split === 'makita') {
        const part1 = setupBeforeFirst + setupUpToLast;
        scan.makita = { part1, part2: simulateCount, part3: commandCount - part1 - simulateCount };
        if (firstSimulate !== undefined) scan.makita.firstSimulate = firstSimulate;
        if (lastSimulate !== undefined) scan.makita.lastSimulate = lastSimulate;
      }
      return scan;
    },
  };
}

/**
 * The name of a file's first phase: its base name, except for standard input (`-`, /dev/stdin,
 * descriptor 0), named "stdin", and another descriptor, named "jobs": `tasker run <(generate)`
 * passes /dev/fd/63, and the base name "63" would mean nothing to the user.
 */
export function phaseNameOf(path: string): string {
  if (path === '-' || /^\/(dev\/stdin|dev\/fd\/0|proc\/(self|\d+)\/fd\/0)$/.test(path)) return 'stdin';
  if (/^\/(dev\/fd|proc\/(self|\d+)\/fd)\/\d+$/.test(path)) return 'jobs';
  const parts = path.split(/[\\/]/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? path;
}

/**
 * Turns file scans into phases: one phase per file, subdivided by `# phase:` markers, or the
 * makita preset's three parts. Empty phases are dropped. Throws InputError when nothing is left.
 */
export function planPhases(scans: readonly FileScan[], split: SplitPreset | undefined): PhaseSpec[] {
  const phases: Omit<PhaseSpec, 'index'>[] = [];
  if (split === 'makita') {
    if (scans.length !== 1) {
      throw new InputError('plan', `--split makita takes exactly one jobs file (got ${scans.length})`);
    }
    const scan = scans[0]!;
    const counts = scan.makita;
    if (counts?.firstSimulate === undefined || counts.lastSimulate === undefined) {
      throw new InputError('plan', `--split makita: ${scan.path} has no line containing "simulate"; it does not look like a makita jobs.sh (run without --split, or use "# phase:" markers)`);
    }
    const bounds = { firstSimulate: counts.firstSimulate, lastSimulate: counts.lastSimulate };
    phases.push(
      { name: 'setup', runsOn: 'tasker', pool: defaultPool, fileIndex: 0, selector: { kind: 'makita', part: 1, ...bounds }, commandCount: counts.part1 },
      { name: 'simulate', runsOn: 'workers', pool: defaultPool, fileIndex: 0, selector: { kind: 'makita', part: 2, ...bounds }, commandCount: counts.part2 },
      { name: 'aggregate', runsOn: 'workers', pool: defaultPool, fileIndex: 0, selector: { kind: 'makita', part: 3, ...bounds }, commandCount: counts.part3 },
    );
  } else {
    for (const scan of scans) {
      let from = 1;
      let name = phaseNameOf(scan.path);
      let runsOn: RunsOn = 'workers';
      let pool = defaultPool;
      let before = 0;
      for (const marker of scan.markers) {
        phases.push({ name, runsOn, pool, fileIndex: scan.index, selector: { kind: 'lines', fromLine: from, toLine: marker.line }, commandCount: marker.commandsBefore - before });
        from = marker.line;
        name = marker.name;
        runsOn = marker.runsOn;
        pool = marker.pool;
        before = marker.commandsBefore;
      }
      phases.push({ name, runsOn, pool, fileIndex: scan.index, selector: { kind: 'lines', fromLine: from, toLine: Number.MAX_SAFE_INTEGER }, commandCount: scan.commandCount - before });
    }
  }
  const kept = phases.filter((phase) => phase.commandCount > 0).map((phase, i) => ({ ...phase, index: i + 1 }));
  if (kept.length === 0) {
    const names = scans.map((scan) => scan.path).join(', ');
    throw new InputError('plan', `nothing to run: ${names} ${scans.length === 1 ? 'has' : 'have'} no commands (only blank lines and comments)`);
  }
  return kept;
}

/** Whether a command (by start line and text) belongs to the phase's selector. */
export function selects(selector: Selector, line: number, text: string): boolean {
  if (selector.kind === 'lines') return line >= selector.fromLine && line < selector.toLine;
  return makitaPart(text, line, selector.firstSimulate, selector.lastSimulate) === selector.part;
}

/** Last line a selector can match, so a reader can stop early. */
export function lastSelectableLine(selector: Selector): number {
  return selector.kind === 'lines' ? selector.toLine - 1 : Number.MAX_SAFE_INTEGER;
}
