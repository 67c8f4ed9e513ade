import type { Command } from 'commander';
import { maxBundleSize } from '../../shared/broker/messages.js';
import { logLevels } from '../../shared/config/config-values.js';
import type { RunFlags } from '../config.js';
import { splitPresets } from '../jobs/plan.js';

/** `tasker run`: its arguments and options. The action is main.ts's (it owns signals and wires the run, tasker/run/). */

/** A repeatable option; no default, so help does not print "(default: [])". */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export interface RunCommandDeps {
  /** Runs the run; resolves with its exit code. */
  run: (files: string[], flags: RunFlags) => Promise<number>;
  setExitCode: (code: number) => void;
}

export function addRunCommand(program: Command, deps: RunCommandDeps): Command {
  return program
    .command('run')
    .description('Run jobs files phase by phase. Without AMQP_URL, everything runs on this machine.')
    .argument('[files...]', 'jobs files: one phase per file, split further by "# phase:" lines')
    .option('-j, --concurrency <n>', 'commands run at once on this machine (default: number of CPUs)')
    .option('--retries <n>', 'extra attempts for a failed command (default: 0)')
    .option('--retry-delay <duration>', 'first wait before a retry, doubling each time (default: 1s)')
    .option('--timeout <duration>', 'stop a command that runs longer than this, e.g. 90s, 2h (default: no limit)')
    .option('--kill-grace <duration>', 'time between SIGTERM and SIGKILL when stopping a command (default: 10s)')
    .option('--keep-going', 'start later phases even when a phase had failures')
    .option('--priority <level>', 'among the runs of a pool: high, normal or low; a waiting command of a higher priority starts first, equal ones share the slots (default: normal)')
    .option('--halt <when>', 'at the first command that fails for good: soon (start no more, let running ones finish) or now (stop them too) (default: never)')
    .option('--split <preset>', `split one jobs file with a preset: ${splitPresets.join(', ')}`)
    .option('--pool <phase=pool>', 'send the phase PHASE to the workers of pool POOL, over its marker (repeatable; default: the marker\'s pool, else default)', collect)
    .option('--workdir <dir>', 'directory commands run in (default: $WORKDIR, else the current directory)')
    .option('--clean', 'empty the workdir before a new run (refuses /, your home, and unknown non-empty directories)')
    .option('--force-clean', 'with --clean: also empty a non-empty directory that never held a tasker run')
    .option('--stage <path>', 'copy a file or directory into the workdir after cleaning (repeatable)', collect)
    .option('--run-id <id>', 'name of the run (default: a timestamp); an unfinished run of that name is resumed')
    .option('--resume <id>', 'continue the run of that id; fails if there is none. With jobs files that were edited since: only the changed, new, failed and unfinished commands run')
    .option('--rerun-failed <id>', 'the same as --resume ID: run the failed and unfinished commands of that run again, keep the ones that succeeded')
    .option('--progress-interval <duration>', 'how often progress is logged when stderr is not a terminal (default: 5s)')
    .option('--no-direct-exec', 'run every command through bash, even plain ones')
    .option('--amqp-url <url>', 'dispatch workers phases through this RabbitMQ (default: $AMQP_URL; unset: run here)')
    .option('--redis-url <url>', 'Redis for run state in distributed mode (default: $REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--namespace <name>', 'prefix of queues and Redis keys (default: $TASKER_NAMESPACE, else tasker)')
    .option('--max-in-flight <n>', 'commands published and not finished, at most (default: 10000)')
    .option('--bundle-size <n>', `commands per work-queue message: auto, or 1 to ${maxBundleSize} (1: no bundles) (default: $TASKER_BUNDLE_SIZE, else auto)`)
    .option('--stall-warning <duration>', 'warn when no worker consumes or nothing finishes for this long (default: 60s)')
    .option('--metrics-port <port>', 'serve /healthz, /livez and /metrics on this port while the run lasts (default: $METRICS_PORT; unset: off)')
    .option('--metrics-host <address>', 'the address that server binds to, e.g. 127.0.0.1 (default: $METRICS_HOST; unset: every interface)')
    .option('--log-level <level>', `${logLevels.join(', ')} (default: $LOG_LEVEL, else info)`)
    .exitOverride()
    .action(async (files: string[], { rerunFailed, ...flags }: RunFlags & { rerunFailed?: string }) => {
      // --rerun-failed names what a resume does (failed commands run again); --run-id/--resume checks apply to it.
      deps.setExitCode(await deps.run(files, { ...flags, resume: flags.resume ?? rerunFailed }));
    });
}
