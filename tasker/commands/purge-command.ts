import type { Command } from 'commander';
import { ExitCode } from '../../shared/errors.js';
import type { OpsFlags } from '../config.js';
import type { OpsCommandDeps } from './command-deps.js';
import { addOpsOptions, withOps } from './ops-backend.js';

/** `tasker purge RUN_ID`: removes a finished, interrupted, abandoned or cancelled run's queue, leftover messages and Redis keys (distributed/purge-run.ts). */

export function addPurgeCommand(program: Command, deps: OpsCommandDeps): Command {
  return addOpsOptions(program.command('purge'))
    .description("Remove a finished, interrupted or cancelled run's queue, leftover messages and Redis keys (a live run: tasker cancel first).")
    .argument('<run-id>', 'the run')
    .option('--force', 'purge a cancelled run even though its tasker still sends heartbeats')
    .action(async (runId: string, flags: OpsFlags & { force?: boolean }) => {
      deps.setExitCode(
        await withOps('purge', flags, deps, async (backend, names) => {
          const { purgeRun } = await import('../distributed/purge-run.js');
          const report = await purgeRun(backend, names, runId, flags.force === true, deps.now());
          deps.writeNow(
            `Purged run ${report.runId}: result queue ${report.queueDeleted ? 'deleted' : 'already gone'}, ${report.keysRemoved} Redis keys removed; workers will drop any of its commands still queued.\n`,
          );
          return ExitCode.ok;
        }),
      );
    });
}
