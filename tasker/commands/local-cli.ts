import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { envValue } from '../../shared/config/config-values.js';
import { ExitCode } from '../../shared/errors.js';
import { formatLocalStatus, formatRunsTable } from '../report/run-overview.js';
import { formatSummary } from '../report/summary.js';
import { findLocalRun, listLocalRuns } from './local-runs.js';

/** `tasker runs` and the broker-less `tasker status`: what the files of a workdir say. */

export interface LocalCliDeps {
  env: Record<string, string | undefined>;
  cwd: string;
  write: (text: string) => Promise<void>;
  now: () => number;
  setExitCode: (code: number) => void;
}

function workdirOf(flag: string | undefined, deps: Pick<LocalCliDeps, 'env' | 'cwd'>): string {
  return resolve(deps.cwd, flag ?? envValue(deps.env, 'WORKDIR') ?? deps.cwd);
}

/** `tasker status` reads the workdir when it is given one, or when there is no broker to ask. */
export function isLocalStatus(flags: { workdir?: string; amqpUrl?: string }, env: Record<string, string | undefined>): boolean {
  return flags.workdir !== undefined || (flags.amqpUrl === undefined && envValue(env, 'AMQP_URL') === undefined);
}

export async function localStatus(runId: string | undefined, flags: { workdir?: string; json?: boolean }, deps: LocalCliDeps): Promise<number> {
  const workdir = workdirOf(flags.workdir, deps);
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
      const workdir = workdirOf(flags.workdir, deps);
      const runs = await listLocalRuns(workdir);
      await deps.write(flags.json === true ? `${JSON.stringify(runs, null, 2)}\n` : formatRunsTable(workdir, runs));
      deps.setExitCode(ExitCode.ok);
    });
}
