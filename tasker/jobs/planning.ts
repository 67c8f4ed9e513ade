import { readLogicalLines, readPhaseCommands, scanJobsFile } from './jobs-reader.js';
import { startShellSyntaxCheck, type CommandLine, type ShellSyntaxCheck } from './shell-syntax.js';
import { defaultPool } from '../../shared/config/names.js';
import { planPhases, runsOnShown, type FileScan, type PhaseSpec, type PlannedCommand, type SplitPreset } from './plan.js';

/** From jobs files to a plan: one checked pass over each file (copied for the run as it is read), and the plan printed or written as JSON. */

/** A jobs file as planned: the name the user gave and the path read (the run's copy, once made). */
export interface JobsSource {
  displayPath: string;
  readPath: string;
  sha256: string;
}

export interface Plan {
  split: SplitPreset | undefined;
  sources: JobsSource[];
  scans: FileScan[];
  phases: PhaseSpec[];
  /**
   * The sha256 of the run's run.json: set once it is written (new run) or read (resume). A
   * distributed run keeps it in Redis, where a resumed tasker checks it (run-registration.ts).
   */
  recordSha256?: string;
}

/**
 * Reads every jobs file once (validating every line) and plans the phases. With `copyPath`,
 * each file is copied byte for byte while it is read, and later passes read the copy.
 */
export async function scanAndPlan(
  files: readonly string[],
  split: SplitPreset | undefined,
  /** The environment commands will run with (for the shell's syntax check). */
  env: Record<string, string | undefined>,
  copyPath?: (index: number, path: string) => string,
): Promise<Plan> {
  const scans: FileScan[] = [];
  const sources: JobsSource[] = [];
  const checks: ShellSyntaxCheck[] = [];
  try {
    for (const [index, file] of files.entries()) {
      const copyTo = copyPath?.(index, file);
      // The shell's syntax check is fed by the same pass that validates and copies the file.
      const check = await startShellSyntaxCheck(file, { env });
      checks.push(check);
      const scan = await scanJobsFile(file, index, split, { displayName: file, onCommand: check.add, ...(copyTo === undefined ? {} : { copyTo }) });
      scans.push(scan);
      sources.push({ displayPath: file, readPath: copyTo ?? file, sha256: scan.sha256 });
    }
    const phases = planPhases(scans, split);
    // Every line is valid text and the plan is sound; last, can the shell parse every command?
    for (const [index, source] of sources.entries()) {
      await checks[index]!.finish(() => commandLines(source.readPath, source.displayPath));
    }
    return { split, sources, scans, phases };
  } finally {
    for (const check of checks) await check.discard();
  }
}

async function* commandLines(path: string, displayName: string): AsyncGenerator<CommandLine> {
  for await (const entry of readLogicalLines(path, { displayName })) if (entry.kind === 'command') yield entry;
}

export function commandsOf(plan: Pick<Plan, 'sources'>, phase: PhaseSpec): AsyncIterable<PlannedCommand> {
  const source = plan.sources[phase.fileIndex];
  if (source === undefined) throw new Error(`phase ${phase.name} names file #${phase.fileIndex}, which the plan does not have`);
  return readPhaseCommands(phase, source.readPath, source.displayPath);
}

type Write = (chunk: string) => Promise<void> | void;

/**
 * Writes the plan as JSON, streaming the commands: never the whole plan in memory.
 * Shape: {"phases":[{"name","runsOn","pool","commandCount","commands":[{"id","file","line","command"}]}], ...extra}
 * (`runsOn`: "tasker", "workers" (distributed) or "local slots" (a local run's workers phases);
 * `pool` is null for a phase the tasker runs)
 */
export async function writePlanJson(plan: Plan, write: Write, distributed: boolean, extra: Record<string, unknown> = {}): Promise<void> {
  await write('{');
  for (const [key, value] of Object.entries(extra)) await write(`${JSON.stringify(key)}:${JSON.stringify(value)},`);
  await write(`"split":${JSON.stringify(plan.split ?? null)},"files":${JSON.stringify(plan.sources.map((s) => ({ path: s.displayPath, sha256: s.sha256 })))},"phases":[`);
  for (const [position, phase] of plan.phases.entries()) {
    if (position > 0) await write(',');
    const head = { index: phase.index, name: phase.name, runsOn: runsOnShown(phase.runsOn, distributed), pool: poolShown(phase), commandCount: phase.commandCount };
    await write(`${JSON.stringify(head).slice(0, -1)},"commands":[`);
    let first = true;
    for await (const command of commandsOf(plan, phase)) {
      await write(`${first ? '' : ','}\n${JSON.stringify(command)}`);
      first = false;
    }
    await write(']}');
  }
  await write(']}\n');
}

/** A tasker phase has no pool to show. */
function poolShown(phase: PhaseSpec): string | null {
  return phase.runsOn === 'workers' ? phase.pool : null;
}

function lineRange(phase: PhaseSpec): string {
  const selector = phase.selector;
  if (selector.kind === 'makita') {
    const part = ['', 'before the first simulate, plus mkdir/describe lines up to the last', 'lines containing "simulate"', 'everything else'][selector.part];
    return `makita part ${selector.part}: ${part ?? ''}`;
  }
  const to = selector.toLine === Number.MAX_SAFE_INTEGER ? 'end' : String(selector.toLine - 1);
  return `lines ${selector.fromLine}–${to}`;
}

/** Who runs a phase's commands, and how, in a local or a distributed run. */
function howRun(phase: PhaseSpec, distributed: boolean): string {
  if (phase.runsOn === 'tasker') return 'run by the tasker, one at a time, in file order';
  if (distributed) return `run by the workers of pool ${phase.pool}, in parallel`;
  return `run on the local slots, in parallel${phase.pool === defaultPool ? '' : ` (with a broker: by the workers of pool ${phase.pool})`}`;
}

/** The human plan: one block per phase with its first commands; `distributed`: as a run with a broker would run it. */
export async function formatPlanText(plan: Plan, distributed: boolean, previewCount = 3): Promise<string> {
  const total = plan.phases.reduce((sum, phase) => sum + phase.commandCount, 0);
  const out: string[] = [`${plan.phases.length} phase${plan.phases.length === 1 ? '' : 's'}, ${total} command${total === 1 ? '' : 's'}:`];
  for (const phase of plan.phases) {
    const source = plan.sources[phase.fileIndex]!;
    out.push('', `Phase ${phase.index} "${phase.name}": ${phase.commandCount} command${phase.commandCount === 1 ? '' : 's'}, ${howRun(phase, distributed)}`);
    out.push(`  from ${source.displayPath}, ${lineRange(phase)}`);
    let shown = 0;
    for await (const command of commandsOf(plan, phase)) {
      if (shown === previewCount) break;
      out.push(`  ${command.id.padEnd(10)} ${command.command.length > 120 ? `${command.command.slice(0, 120)}…` : command.command}`);
      shown++;
    }
    if (phase.commandCount > shown) out.push(`  … ${phase.commandCount - shown} more`);
  }
  return `${out.join('\n')}\n`;
}
