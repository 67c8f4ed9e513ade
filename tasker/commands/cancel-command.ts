import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import type { OpsFlags } from '../config.js';
import type { OpsCommandDeps } from './command-deps.js';
import { addOpsOptions, withOps } from './ops-backend.js';

/** `tasker cancel RUN_ID`: ends a run for good, whoever's tasker runs it (distributed/cancel-run.ts). */

/** How long `tasker cancel` waits for the run's tasker to record the cancel. */
const taskerStopWaitMs = 15_000;

export function addCancelCommand(program: Command, deps: OpsCommandDeps): Command {
  return addOpsOptions(program.command('cancel'))
    .description('Cancel a run: workers start none of its commands any more, its tasker stops and records it cancelled (exit 4).')
    .argument('<run-id>', 'the run')
    .option('--by <who>', 'who cancels, recorded with the run (default: user@host)')
    .option('--reason <text>', 'why, recorded with the run')
    .action(async (runId: string, flags: OpsFlags & { by?: string; reason?: string }) => {
      deps.setExitCode(
        await withOps('cancel', flags, deps, async (backend, names) => {
          const { cancelRun } = await import('../distributed/cancel-run.js');
          const cancellation = { by: flags.by ?? canceller(), at: new Date(deps.now()).toISOString(), ...(flags.reason === undefined ? {} : { reason: flags.reason }) };
          const report = await cancelRun(backend.store, names, runId, cancellation, { now: deps.now, waitMs: taskerStopWaitMs });
          const by = `${report.cancellation.by}${report.cancellation.reason === undefined ? '' : ` (${report.cancellation.reason})`}`;
          const tasker = { none: 'no tasker runs it', stopped: 'its tasker stopped', 'still running': `its tasker has not stopped yet after ${taskerStopWaitMs / 1000} s` }[report.tasker];
          deps.writeNow(
            report.before
              ? `Run ${runId} was already cancelled by ${by} at ${report.cancellation.at}.\n`
              : `Cancelled run ${runId} (by ${by}): ${tasker}; workers start none of its commands. Remove it with: ${deps.invocation} purge ${runId}\n`,
          );
          return ExitCode.ok;
        }),
      );
    });
}

function canceller(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = 'unknown'; // no passwd entry for this uid (a container's arbitrary user)
  }
  return `${user}@${hostname()}`;
}
