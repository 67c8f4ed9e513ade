import { formatHelpEnd } from '../shared/cli/help-text.js';
import { ExitCode } from '../shared/errors.js';

/** Examples and exit codes of each `tasker` subcommand's --help. `me` is how the user starts the tasker. */

const usageError = [ExitCode.usage, 'bad flag or variable, unknown run, broker or Redis unreachable; nothing was done'] as const;
const internal = [ExitCode.internal, 'the tasker itself could not go on'] as const;

export function planHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'the phases and their first commands', command: `${me} plan jobs.sh` },
      { what: 'a makita jobs file, split as a run would split it', command: `${me} plan --split makita jobs.sh` },
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
      { what: 'continue a failed or interrupted run (its id is in the summary)', command: `${me} run --resume RUN_ID --workdir /tmp/work` },
      { what: 'hand the workers phases to workers through RabbitMQ', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 ${me} run --workdir /shared jobs.sh` },
    ],
    [
      [ExitCode.ok, 'every command succeeded'],
      [ExitCode.commandsFailed, 'a command failed, or a phase was skipped after failures (see the summary)'],
      [ExitCode.usage, 'bad flag, variable or jobs file, unsafe --clean, unusable workdir, unknown run, broker or Redis unreachable; nothing ran'],
      [ExitCode.internal, 'the tasker itself could not go on (e.g. disk full); the run can be resumed'],
      [ExitCode.interrupted, 'interrupted (SIGINT/SIGTERM); running commands were stopped and recorded; the run can be resumed'],
    ],
  );
}

export function statusHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'the latest run in RabbitMQ and Redis', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 ${me} status` },
      { what: 'one run, as JSON', command: `${me} status sims-2026-11 --json` },
    ],
    [[ExitCode.ok, 'the status was printed'], usageError, internal],
  );
}

export function purgeHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: "remove a finished run's queue and Redis keys", command: `${me} purge sims-2026-11` },
      { what: 'also when its tasker still seems alive', command: `${me} purge sims-2026-11 --force` },
    ],
    [[ExitCode.ok, 'the run was purged'], [ExitCode.usage, 'unknown run, a run still in progress (without --force), broker or Redis unreachable'], internal],
  );
}
