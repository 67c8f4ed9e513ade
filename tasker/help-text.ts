import { formatHelpEnd } from '../shared/cli/help-text.js';
import { ExitCode } from '../shared/errors.js';

/** Examples and exit codes of each `tasker` subcommand's --help. `me` is how the user starts the tasker. */

const internal = [ExitCode.internal, 'the tasker itself could not go on'] as const;

export function planHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'the phases and their first commands', command: `${me} plan jobs.sh` },
      { what: 'a makita jobs file, split as a run would split it', command: `${me} plan --split makita jobs.sh` },
      { what: 'the same, its simulations on the worker pool highmem', command: `${me} plan --split makita --pool simulate=highmem jobs.sh` },
      { what: 'every command as JSON: id, file, line, command', command: `${me} plan --json jobs.sh | head` },
    ],
    [
      [ExitCode.ok, 'the plan was printed (or its reader stopped reading)'],
      [ExitCode.usage, 'bad flag, unreadable or invalid jobs file (its line is named); nothing is printed on stdout'],
      internal,
    ],
  );
}

export function runHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'run here, one command per CPU at a time', command: `${me} run jobs.sh` },
      { what: '8 at a time, 2 retries per failed command, none longer than 2 hours', command: `${me} run -j 8 --retries 2 --timeout 2h jobs.sh` },
      { what: 'a makita jobs file in a fresh workdir, with its data copied in', command: `${me} run --split makita --workdir /tmp/work --clean --stage data jobs.sh` },
      { what: 'stop everything at the first command that fails (GNU parallel: --halt now,fail=1)', command: `${me} run --halt now jobs.sh` },
      { what: 'continue a failed or interrupted run (its id is in the summary)', command: `${me} run --resume RUN_ID --workdir /tmp/work` },
      { what: 'hand the workers phases to workers through RabbitMQ', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 ${me} run --workdir /shared jobs.sh` },
      { what: "send makita's simulations to the workers of pool highmem (worker --pool highmem)", command: `${me} run --split makita --pool simulate=highmem --workdir /shared jobs.sh` },
    ],
    [
      [ExitCode.ok, 'every command succeeded'],
      [ExitCode.commandsFailed, 'a command failed, or a phase was skipped after failures (see the summary)'],
      [ExitCode.usage, 'bad flag, variable or jobs file, unsafe --clean, unusable workdir, unknown run, broker or Redis unreachable; nothing ran'],
      [ExitCode.internal, 'the tasker itself could not go on (e.g. disk full); the run can be resumed'],
      [ExitCode.cancelled, 'the run was cancelled (tasker cancel); it cannot be resumed'],
      [ExitCode.interrupted, 'interrupted (SIGINT/SIGTERM/SIGHUP); running commands were stopped and recorded; the run can be resumed'],
    ],
  );
}

export function statusHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'the latest run of a workdir, from its files (no broker needed)', command: `${me} status --workdir /tmp/work` },
      { what: 'one run of the current directory, with its dead-lettered commands, as JSON', command: `${me} status 20261121-104144-m5tb --json` },
      { what: 'the latest run in RabbitMQ and Redis', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 ${me} status` },
    ],
    [[ExitCode.ok, 'the status was printed'], [ExitCode.usage, 'no such run, no runs in the workdir, broker or Redis unreachable'], internal],
  );
}

export function runsHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'the runs of the current directory', command: `${me} runs` },
      { what: 'the runs of a workdir, as JSON', command: `${me} runs --workdir /tmp/work --json` },
      { what: 'the runs RabbitMQ and Redis know: live or tasker gone, waiting, running, share', command: `AMQP_URL=amqp://rabbitmq ${me} runs` },
    ],
    [[ExitCode.ok, 'the runs were listed (none is not an error)'], [ExitCode.usage, 'the workdir cannot be read, or RabbitMQ or Redis cannot be reached'], internal],
  );
}

export function reportHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: "the latest run of the current directory: writes .tasker/runs/RUN_ID/report.html", command: `${me} report` },
      { what: 'one run of a workdir, to a file of your choice', command: `${me} report 20261121-104144-m5tb --workdir /tmp/work --out run.html` },
    ],
    [[ExitCode.ok, 'the report was written (its path is printed)'], [ExitCode.usage, 'no such run, no runs in the workdir'], internal],
  );
}

export function purgeHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: `remove a finished, interrupted or cancelled run's queue and Redis keys (a live run: ${me} cancel it first)`, command: `${me} purge sims-2026-11` },
      { what: 'a cancelled run whose tasker has not stopped yet', command: `${me} purge sims-2026-11 --force` },
    ],
    [[ExitCode.ok, 'the run was purged'], [ExitCode.usage, 'unknown run, a live run not cancelled, a cancelled run whose tasker still runs (without --force), broker or Redis unreachable'], internal],
  );
}

export function cancelHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'stop a run for good, whoever runs it: its tasker exits 4, workers start none of its commands', command: `${me} cancel sims-2026-11 --reason 'wrong input'` },
      { what: 'say who cancels (default: user@host)', command: `${me} cancel sims-2026-11 --by oncall --reason 'cluster maintenance'` },
    ],
    [[ExitCode.ok, 'the run is cancelled (or was already)'], [ExitCode.usage, 'unknown run, a finished run, broker or Redis unreachable'], internal],
  );
}
