import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import { formatRunsTable } from '../report/run-overview.js';
import { loadWorkdirOpsConfig } from '../config.js';
import { listLocalRuns } from '../report/local-runs.js';
import type { CommandDeps } from './command-deps.js';

/** `tasker runs`: the runs recorded in a workdir, read from their files (no broker needed). */

export function addRunsCommand(program: Command, deps: CommandDeps, helpEnd: string): Command {
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
