import { formatHelpEnd } from '../shared/cli/help-text.js';
import { ExitCode } from '../shared/errors.js';

/** Examples and exit codes of `worker --help`. `me` is how the user starts the worker. Pure. */
export function workerHelp(me: string): string {
  return formatHelpEnd(
    [
      { what: 'take commands from RabbitMQ, 4 at a time, in the directory shared with the tasker', command: `AMQP_URL=amqp://user:pass@rabbitmq:5672 REDIS_URL=redis://redis:6379 ${me} --workdir /shared --concurrency 4` },
      { what: 'exit once there has been no work for 5 minutes (a KEDA ScaledJob)', command: `${me} --workdir /shared --exit-when-idle 5m` },
    ],
    [
      [ExitCode.ok, 'stopped: after SIGTERM/SIGINT (running commands finished, or were killed and requeued after --drain-timeout), or idle for --exit-when-idle'],
      [ExitCode.usage, 'bad flag or variable, no AMQP_URL, missing or unwritable workdir, broker or Redis unreachable or refusing; nothing ran'],
      [ExitCode.internal, 'the worker could not start for another reason (see the log)'],
    ],
  );
}
