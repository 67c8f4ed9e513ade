import { join } from 'node:path';
import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import { formatLocalStatus, formatRunsTable } from '../report/run-overview.js';
import { formatSummary } from '../report/summary.js';
import { loadWorkdirOpsConfig } from '../config.js';
import { findLocalRun, listLocalRuns } from '../report/local-runs.js';

/** `tasker runs` and the broker-less `tasker status`: what the files of a workdir say. */

export interface LocalCliDeps {
  env: Record<string, string | undefined>;
  cwd: string;
  write: (text: string) => Promise<void>;
  now: () => number;
  setExitCode: (code: number) => void;
}

/** `tasker status` reads the workdir when it is given one, or when there is no broker to ask. */
export function isLocalStatus(flags: { workdir?: string; amqpUrl?: string }, deps: Pick<LocalCliDeps, 'env' | 'cwd'>): boolean {
  return loadWorkdirOpsConfig(flags, deps.env, deps.cwd).fromFiles;
}

export async function localStatus(runId: string | undefined, flags: { workdir?: string; json?: boolean }, deps: LocalCliDeps): Promise<number> {
  const { workdir } = loadWorkdirOpsConfig(flags, deps.env, deps.cwd);
  const run = await findLocalRun(workdir, runId);
  if (flags.json === true) {
    await deps.write(`${JSON.stringify({ ...run.overview, summary: run.summary }, null, 2)}\n`);
    return ExitCode.ok;
  }
  await deps.write(formatLocalStatus(run.overview, deps.now()));
  if (run.summary !== undefined) await deps.write(`\nIts last session:\n${formatSummary(run.summary, { logPath: (relative) => join(workdir, relative) })}`);
  return ExitCode.ok;
}

export function addRunsCommand(program: Command, deps: LocalCliDeps, helpEnd: string): Command {
  return program
    .command('runs')
    .description('List the runs recorded in a workdir, newest first, with their state and counts (no broker needed).')
    .option('--workdir <dir>', 'the workdir (default: $WORKDIR, else the current directory)')
    .option('--json', 'print the runs as JSON')
    .addHelpText('after', helpEnd)
    .exitOverride()
    .action(async (flags: { workdir?: string; json?: boolean }) => {
      const { workdir } = loadWorkdirOpsConfig(flags, deps.env, deps.cwd);
      const runs = await listLocalRuns(workdir);
      await deps.write(flags.json === true ? `${JSON.stringify(runs, null, 2)}\n` : formatRunsTable(workdir, runs));
      deps.setExitCode(ExitCode.ok);
    });
}
