import { join } from 'node:path';
import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import { loadWorkdirOpsConfig, type OpsFlags } from '../config.js';
import { findLocalRun } from '../report/local-runs.js';
import { formatLocalStatus } from '../report/run-overview.js';
import { formatSummary } from '../report/summary-text.js';
import type { CommandDeps, OpsCommandDeps } from './command-deps.js';
import { addOpsOptions, withOps } from './ops-backend.js';

/** `tasker status [RUN_ID]`: a run as the files of its workdir tell it, or, with a broker, as RabbitMQ and Redis do. */

type StatusFlags = OpsFlags & { json?: boolean; workdir?: string };

/** `tasker status` reads the workdir when it is given one, or when there is no broker to ask. */
export function isLocalStatus(flags: { workdir?: string; amqpUrl?: string }, deps: Pick<CommandDeps, 'env' | 'cwd'>): boolean {
  return loadWorkdirOpsConfig(flags, deps.env, deps.cwd).fromFiles;
}

export async function localStatus(runId: string | undefined, flags: { workdir?: string; json?: boolean }, deps: CommandDeps): Promise<number> {
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

/** From RabbitMQ and Redis: the modules that ask them are loaded only now. */
function brokerStatus(runId: string | undefined, flags: StatusFlags, deps: OpsCommandDeps): Promise<number> {
  return withOps('status', flags, deps, async (backend, names) => {
    const { collectStatus } = await import('../report/collect-status.js');
    const { formatStatus } = await import('../report/run-status.js');
    const report = await collectStatus(backend, names, runId);
    deps.writeNow(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report, deps.now(), deps.invocation));
    return ExitCode.ok;
  });
}

export function addStatusCommand(program: Command, deps: OpsCommandDeps): Command {
  return addOpsOptions(program.command('status'))
    .description('Show a run. With AMQP_URL: from RabbitMQ and Redis (phase, counts, what runs where, queues, workers). Without, or with --workdir: from the files of the workdir.')
    .argument('[run-id]', 'the run (default: the latest one)')
    .option('--workdir <dir>', 'read the run from this workdir, without a broker (default: $WORKDIR, else the current directory, when AMQP_URL is unset)')
    .option('--json', 'print the status as JSON')
    .action(async (runId: string | undefined, flags: StatusFlags) => {
      deps.setExitCode(isLocalStatus(flags, deps) ? await localStatus(runId, flags, deps) : await brokerStatus(runId, flags, deps));
    });
}
