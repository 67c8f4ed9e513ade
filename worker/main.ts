import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { completionShells } from '../shared/cli/completion.js';
import { describeInvocation, invocationFacts } from '../shared/cli/invocation.js';
import { commandEnvironment, logLevels, secretsHeld } from '../shared/config/config-values.js';
import { redactedArgv } from '../shared/config/urls.js';
import { workerCompletion, workerHelp } from './help-text.js';
import { errorMessage, ExitCode, InputError } from '../shared/errors.js';
import { noteHangUp, releaseClosedTerminal } from '../shared/cli/hangup.js';
import { createStdout, isClosedStdoutError } from '../shared/cli/stdout.js';
import { createCommandExecutor } from '../shared/exec/command-executor.js';
import { commandUserEnvironment, sayCommandUser, setUpCommandUser, type CommandUser } from '../shared/exec/command-user.js';
import { guardRunRecords } from '../shared/run-dir/run-records-guard.js';
import { createLogger } from '../shared/observe/logger.js';
import type { MetricsServer } from '../shared/observe/metrics-server.js';
import { checkWorkerWorkdir } from './service/check-workdir.js';
import { loadWorkerConfig, type WorkerFlags } from './config.js';
import { startWorker } from './service/start-worker.js';
import { createUsageRelay } from './service/usage-relay.js';
import { placementOf } from '../shared/state/placement.js';
import { hostname } from 'node:os';

/** Composition root of the worker: parse, wire, handle signals, own the exit code. */

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// The worker prints only help and version to stdout (logs go to stderr); a reader that went away
// (`worker --help | head -1`) ends it quietly, like other Unix tools, not with an EPIPE stack trace.
const stdout = createStdout(process.stdout, (error) => {
  if (!isClosedStdoutError(error, process.stdout.isTTY === true)) process.stderr.write(`worker: cannot write to stdout: ${errorMessage(error)}\n`);
});

/** A repeatable option; no default, so help does not print "(default: [])". */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function buildProgram(argv: string[]): Command {
  return new Command()
    .name('worker')
    .description('Take commands from RabbitMQ and run them in the shared workdir.')
    .version(packageJson.version)
    .option('--amqp-url <url>', 'RabbitMQ (default: $AMQP_URL)')
    .option('--redis-url <url>', 'Redis (default: $REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--workdir <dir>', 'shared directory commands run in (default: $WORKDIR, else the current directory)')
    .option('--concurrency <n>', 'commands run at once (default: $WORKER_CONCURRENCY, else 1)')
    .option('--exit-when-idle <duration>', 'exit 0 after this long without work (default: never)')
    .option('--drain-timeout <duration>', 'on SIGTERM, how long running commands may finish (default: 60s)')
    .option('--namespace <name>', 'prefix of queues and Redis keys (default: $TASKER_NAMESPACE, else tasker)')
    .option('--pool <names>', 'worker pools to serve, comma-separated or repeated (default: $WORKER_POOL, else default)', collect)
    .option('--log-level <level>', `${logLevels.join(', ')} (default: $LOG_LEVEL, else info)`)
    .option('--metrics-port <port>', 'serve /healthz, /livez and /metrics on this port (default: $METRICS_PORT; unset: off)')
    .option('--metrics-host <address>', 'the address that server binds to, e.g. 127.0.0.1 (default: $METRICS_HOST; unset: every interface)')
    .addOption(new Option('--completion <shell>', 'print the shell completion script and exit: source <(worker --completion bash)').choices(completionShells))
    .addHelpText('after', workerHelp(describeInvocation(invocationFacts(argv, process.env, process.cwd(), 'worker'), 'worker')))
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: stdout.writeNow, writeErr: (text) => process.stderr.write(text.startsWith('error:') ? `worker: ${text}` : text) });
}

async function main(argv: string[]): Promise<number> {
  // Passwords given as flags leave /proc/PID/cmdline, which every process of the machine can read.
  const title = redactedArgv(argv);
  if (title !== undefined) process.title = title.join(' ');
  // The AWS SDK warns on every start under Node 20 that its 2027 releases will need Node 22. The
  // container images run the current LTS; on a laptop the notice would only bury our messages.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const program = buildProgram(argv);
  let flags: WorkerFlags;
  try {
    program.parse(argv);
    flags = program.opts<WorkerFlags>();
  } catch (error) {
    if (error instanceof CommanderError) return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? ExitCode.ok : ExitCode.usage;
    throw error;
  }
  if (flags.completion !== undefined) {
    await stdout.write(workerCompletion(program, flags.completion));
    return ExitCode.ok;
  }

  let config;
  let commandUser: CommandUser | undefined;
  try {
    config = loadWorkerConfig(flags, process.env, process.cwd());
    await checkWorkerWorkdir(config.workdir);
    commandUser = await setUpCommandUser(config.commandUser);
    if (commandUser !== undefined) await guardRunRecords(resolve(config.workdir), commandUser, 'WORKER_COMMAND_USER');
  } catch (error) {
    process.stderr.write(`worker: ${errorMessage(error)}\n`);
    return ExitCode.usage;
  }
  const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY === true, name: 'worker' });
  let metricsServer: MetricsServer | undefined;
  let worker;
  try {
    if (config.metricsPort !== undefined) {
      // Loaded only when asked for: a worker without metrics stays as small as before.
      const { createMetricsServer } = await import('../shared/observe/metrics-server.js');
      metricsServer = await createMetricsServer({ port: config.metricsPort, host: config.metricsHost, logger, role: 'worker' });
    }
    const usage = createUsageRelay();
    const placement = placementOf(process.env, { hostname: hostname(), version: packageJson.version, slots: config.concurrency, pools: config.pools });
    worker = await startWorker(config, { logger, placement, usage, executor: createCommandExecutor({
        slots: config.concurrency,
        onSample: usage.sample,
        env: { ...commandEnvironment(process.env), ...(commandUser === undefined ? {} : commandUserEnvironment(commandUser)) },
        ...(commandUser === undefined ? {} : { user: commandUser }),
        onRunnerError: (message) => logger.warn({ runner: message }, 'command runner reported a problem'),
      }), metrics: metricsServer?.metrics });
  } catch (error) {
    await metricsServer?.close();
    if (error instanceof InputError) {
      process.stderr.write(`worker: ${error.message}\n`);
      return error.exitCode;
    }
    logger.error({ err: error }, 'worker could not start');
    return ExitCode.internal;
  }
  // Once started: a start that fails says one thing only.
  sayCommandUser(logger, commandUser, secretsHeld(config, process.env), 'WORKER_COMMAND_USER');
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGHUP') noteHangUp();
    signals++;
    void worker.shutdown(`received ${signal}`, signals > 1);
  };
  // SIGHUP (its terminal closed) drains as SIGTERM does; a closed terminal's EIO is not an error to die of.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);
  process.stderr.on('error', () => undefined);
  metricsServer?.setReadiness(worker.readiness);
  const code = await worker.done;
  await metricsServer?.close();
  return code;
}

const code = await main(process.argv);
// Let stdout drain before exiting (a piped summary must not be cut short); after a hang-up there is no one to drain to.
if (releaseClosedTerminal() || stdout.closed) process.exit(code);
else process.stdout.write('', () => process.exit(code));
