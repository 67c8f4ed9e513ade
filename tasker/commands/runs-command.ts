import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import { formatRunsTable } from '../report/run-overview.js';
import { loadWorkdirOpsConfig } from '../config.js';
import { listLocalRuns } from '../report/local-runs.js';
import type { OpsCommandDeps } from './command-deps.js';
import { addOpsOptions, withOps } from './ops-backend.js';
import type { OpsFlags } from '../config.js';
import { isLocalStatus } from './status-command.js';

/**
 * `tasker runs`: the runs recorded in a workdir, read from their files (no broker needed); with
 * AMQP_URL and no --workdir, the runs Redis knows, with what runs, their share, and whether their
 * tasker is alive.
 */

type RunsFlags = OpsFlags & { workdir?: string; json?: boolean };

/** How many runs the broker's listing shows, newest first. */
const listedRuns = 20;

function brokerRuns(flags: RunsFlags, deps: OpsCommandDeps): Promise<number> {
  return withOps('runs', flags, deps, async (backend, names) => {
    const { collectRunViews } = await import('../report/collect-status.js');
    const { formatRunViews } = await import('../report/run-view.js');
    const views = await collectRunViews(backend, listedRuns);
    if (flags.json === true) deps.writeNow(`${JSON.stringify(views, null, 2)}\n`);
    else if (views.length === 0) deps.writeNow(`No runs in Redis (namespace ${names.namespace}).\n`);
    else deps.writeNow(`Runs in Redis (namespace ${names.namespace}), newest first; counts are commands:\n${formatRunViews(views).join('\n')}\n`);
    return ExitCode.ok;
  });
}

export function addRunsCommand(program: Command, deps: OpsCommandDeps, helpEnd: string): Command {
  return addOpsOptions(program.command('runs'))
    .description('List runs, newest first. With AMQP_URL: from Redis (commands waiting, running, done, failed; priority, share, whom each waits behind; a tasker alive or gone). Without, or with --workdir: from the files of the workdir (no broker needed).')
    .option('--workdir <dir>', 'read the runs from this workdir, without a broker (default: $WORKDIR, else the current directory, when AMQP_URL is unset)')
    .option('--json', 'print the runs as JSON')
    .addHelpText('after', helpEnd)
    .action(async (flags: RunsFlags) => {
      if (!isLocalStatus(flags, deps)) {
        deps.setExitCode(await brokerRuns(flags, deps));
        return;
      }
      const { workdir } = loadWorkdirOpsConfig(flags, deps.env, deps.cwd);
      const runs = await listLocalRuns(workdir);
      await deps.write(flags.json === true ? `${JSON.stringify(runs, null, 2)}\n` : formatRunsTable(workdir, runs));
      deps.setExitCode(ExitCode.ok);
    });
}
