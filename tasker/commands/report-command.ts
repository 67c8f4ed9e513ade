import { resolve } from 'node:path';
import type { Command } from 'commander';
import { resumeCommand } from '../../shared/cli/invocation.js';
import { ExitCode } from '../../shared/errors.js';
import { runLayout } from '../../shared/run-dir/run-layout.js';
import { loadWorkdirOpsConfig } from '../config.js';
import { readFinalResults, writeRunReport } from '../report/report-writer.js';
import { findLocalRunId } from '../report/local-runs.js';
import { sizePools, sizingLines } from '../report/pool-sizing.js';
import { readRunFile, readSummaryFile } from '../report/report-input.js';
import type { CommandDeps } from './command-deps.js';

/** `tasker report [RUN_ID]`: writes a run's self-contained HTML report from the files of its workdir. */

export interface ReportFlags {
  workdir?: string;
  out?: string;
}

export async function reportAction(runId: string | undefined, flags: ReportFlags, deps: CommandDeps & { invocation: string }): Promise<number> {
  const { workdir } = loadWorkdirOpsConfig(flags, deps.env, deps.cwd);
  const id = await findLocalRunId(workdir, runId);
  const layout = runLayout(workdir, id);
  const outPath = flags.out === undefined ? undefined : resolve(deps.cwd, flags.out);
  // results.jsonl read once, for the page and for the pool sizes.
  const data = await readFinalResults(layout, deps.now());
  const written = await writeRunReport({ layout, outPath, resumeCommand: resumeCommand(deps.invocation, id, workdir, deps.cwd), now: deps.now, final: { data } });
  await deps.write(`Report of run ${id} (${written.attempts} attempts, ${Math.ceil(written.bytes / 1024)} KiB): ${written.path}\n`);
  // The pool sizes, from results.jsonl: also for runs finished before summaries held them.
  const phases = (await readSummaryFile(layout))?.phases ?? (await readRunFile(layout))?.phases ?? [];
  const { sizing } = sizePools(data.resources ?? [], phases.map((phase) => ({ ...phase, runsOn: phase.runsOn === 'tasker' ? 'tasker' : 'workers' })));
  const lines = sizingLines(sizing);
  if (lines.length > 0) await deps.write(`${lines.slice(1).join('\n')}\n`);
  return ExitCode.ok;
}

export function addReportCommand(program: Command, deps: CommandDeps & { invocation: string }, helpEnd: string): Command {
  return program
    .command('report')
    .description("Write a run's HTML report (one self-contained file: open it in a browser, offline) from the files of its workdir.")
    .argument('[run-id]', 'the run (default: the latest one)')
    .option('--workdir <dir>', 'the workdir (default: $WORKDIR, else the current directory)')
    .option('--out <file>', "where to write it (default: the run's directory, .tasker/runs/RUN_ID/report.html)")
    .addHelpText('after', helpEnd)
    .exitOverride()
    .action(async (runId: string | undefined, flags: ReportFlags) => {
      deps.setExitCode(await reportAction(runId, flags, deps));
    });
}
