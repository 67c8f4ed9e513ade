import type { Command } from 'commander';
import { completionScript, type CompletionShell } from '../shared/cli/completion.js';
import { programSpec } from '../shared/cli/completion-spec.js';
import { formatHelpEnd } from '../shared/cli/help-text.js';
import { logLevels } from '../shared/config/config-values.js';
import { ExitCode } from '../shared/errors.js';

/** Examples and exit codes of `worker --help` (`me` is how the user starts the worker), and its completion script. */
export function workerHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'take commands from RabbitMQ, 4 at a time, in the directory shared with the tasker', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 REDIS_URL=redis://redis:6379 ${me} --workdir /shared --concurrency 4` },
      { what: "serve the worker pools default and highmem (phases marked '(pool: highmem)')", command: `${me} --workdir /shared --pool default,highmem` },
      { what: 'exit once there has been no work for 5 minutes (a KEDA ScaledJob)', command: `${me} --workdir /shared --exit-when-idle 5m` },
    ],
    [
      [ExitCode.ok, 'stopped: after SIGTERM/SIGINT/SIGHUP (running commands finished, or were killed and requeued after --drain-timeout), or idle for --exit-when-idle'],
      [ExitCode.usage, 'bad flag or variable, no AMQP_URL, missing or unwritable workdir, cannot run commands as WORKER_COMMAND_USER, broker or Redis unreachable or refusing; nothing ran'],
      [ExitCode.internal, 'the worker could not start for another reason (see the log)'],
    ],
  );
}

/** `worker --completion bash|zsh`: the completion script of the worker, from its own options. */
export function workerCompletion(program: Command, shell: CompletionShell): string {
  const hints = { '--workdir': { kind: 'dir' as const }, '--log-level': { kind: 'other' as const, choices: logLevels } };
  return completionScript(shell, programSpec(program, hints), `worker --completion ${shell}`);
}
