import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { commandEnvironment, logLevels } from '../shared/config/config-values.js';
import { planHelp, purgeHelp, reportHelp, runHelp, runsHelp, statusHelp } from './help-text.js';
import { addRunsCommand, isLocalStatus, localStatus, type LocalCliDeps } from './commands/local-cli.js';
import { addCompletionCommand } from './commands/completion-command.js';
import { addReportCommand } from './commands/report-command.js';
import { removeScratchDirsSync } from './jobs/scratch-dirs.js';
import { errorMessage, ExitCode, InputError } from '../shared/errors.js';
import { createStdout, isClosedStdoutError } from '../shared/cli/stdout.js';
import { createCommandExecutor } from '../shared/exec/command-executor.js';
import { createLogger, type Logger } from '../shared/observe/logger.js';
import type { MetricsServer } from '../shared/observe/metrics-server.js';
import { splitPresets } from './jobs/plan.js';
import { maxBundleSize } from '../shared/broker/messages.js';
import { names as namesFor, type Names } from '../shared/config/names.js';
import { loadOpsConfig, loadRunConfig, type OpsFlags, type RunFlags } from './config.js';
import type { Backend } from './distributed/distributed-backend.js';
import { addPlanCommand } from './commands/plan-command.js';
import { runRun } from './commands/run-command.js';
import { describeInvocation, invocationFacts } from '../shared/cli/invocation.js';

/** Composition root of the tasker: parses the command line, wires the parts, owns the exit code. */

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** A repeatable option; no default, so help does not print "(default: [])". */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * When stdout's reader goes away (`tasker plan --json FILE | head`), a command whose only product
 * is what it prints ends at once, quietly, exit 0. A run does not: its record is on disk, so it
 * finishes and exits with its own code; only the printed summary is lost.
 */
let runInProgress = false;
const stdout = createStdout(process.stdout, (error) => {
  if (!isClosedStdoutError(error)) process.stderr.write(`tasker: cannot write to stdout: ${errorMessage(error)}\n`);
  if (runInProgress) return;
  removeScratchDirsSync();
  process.exit(isClosedStdoutError(error) ? ExitCode.ok : ExitCode.internal);
});
const writeStdout = stdout.write;

async function runAction(files: string[], flags: RunFlags, me: string): Promise<number> {
  runInProgress = true;
  const config = loadRunConfig(files, flags, process.env, process.cwd());
  const terminal = process.stderr.isTTY ? process.stderr : undefined;
  const logger = createLogger({ level: config.logLevel, pretty: terminal !== undefined, name: 'tasker' });
  const commandEnv = commandEnvironment(process.env);
  const executor = createCommandExecutor({
    slots: config.concurrency,
    directExec: config.directExec,
    env: commandEnv,
    onRunnerError: (message) => logger.warn({ runner: message }, 'command runner reported a problem'),
  });
  const controller = new AbortController();
  let signals = 0;
  let prepared = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (!prepared) {
      // Still checking input or connecting (a jobs file that is a FIFO nobody writes, a slow
      // broker): nothing has run or changed, so there is nothing to stop or record.
      process.stderr.write(`tasker: interrupted (${signal}) before anything ran\n`);
      removeScratchDirsSync();
      process.exit(ExitCode.interrupted);
    }
    if (signals === 1) {
      logger.warn({ signal }, 'interrupted: stopping running commands (send again to kill them at once)');
      controller.abort();
    } else {
      logger.warn({ signal }, 'killing running commands now');
      executor.killAllNow();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let metricsServer: MetricsServer | undefined;
  try {
    if (config.metricsPort !== undefined) {
      // Loaded only when asked for (a Kubernetes Job's probes and scrapes): local runs stay lean.
      const { createMetricsServer } = await import('../shared/observe/metrics-server.js');
      metricsServer = await createMetricsServer({ port: config.metricsPort, host: config.metricsHost, logger });
      metricsServer.setReadiness(() => ({ ok: true, detail: 'ok: running' }));
    }
    return await runRun(config, {
      logger,
      executor,
      commandEnv,
      metrics: metricsServer?.metrics,
      writeOut: stdout.writeNow,
      terminal,
      cwd: process.cwd(),
      invocation: me,
      signal: controller.signal,
      now: Date.now,
      onPrepared: () => {
        prepared = true;
      },
    });
  } catch (error) {
    reportError(error, logger);
    return error instanceof InputError ? error.exitCode : ExitCode.internal;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metricsServer?.close();
  }
}

function reportError(error: unknown, logger?: Logger): void {
  if (error instanceof InputError) {
    process.stderr.write(`tasker: ${error.message}\n`);
    return;
  }
  if (logger !== undefined) logger.error({ err: error }, 'tasker failed');
  process.stderr.write(`tasker: internal error: ${errorMessage(error)}\n`);
}

type SetExitCode = (code: number) => void;

function localCliDeps(setExitCode: SetExitCode): LocalCliDeps {
  return { env: process.env, cwd: process.cwd(), write: stdout.write, now: Date.now, setExitCode };
}

function buildProgram(setExitCode: SetExitCode, me: string): Command {
  const program = new Command();
  program
    .name('tasker')
    .description('Run a jobs file (one shell command per line) phase by phase, here or across workers.')
    .version(packageJson.version)
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: stdout.writeNow, writeErr: (text) => process.stderr.write(text.startsWith('error:') ? `tasker: ${text}` : text) });
  addPlanCommand(program, { write: writeStdout, env: process.env, setExitCode }).addHelpText('after', planHelp(me));
  addRunCommand(program, setExitCode, me).addHelpText('after', runHelp(me));
  addStatusCommand(program, setExitCode, me).addHelpText('after', statusHelp(me));
  addPurgeCommand(program, setExitCode).addHelpText('after', purgeHelp(me));
  addRunsCommand(program, localCliDeps(setExitCode), runsHelp(me));
  addReportCommand(program, { ...localCliDeps(setExitCode), invocation: me }, reportHelp(me));
  addCompletionCommand(program, stdout.write, setExitCode);
  return program;
}

function addRunCommand(program: Command, setExitCode: SetExitCode, me: string): Command {
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
    .option('--halt <when>', 'at the first command that fails for good: soon (start no more, let running ones finish) or now (stop them too) (default: never)')
    .option('--split <preset>', `split one jobs file with a preset: ${splitPresets.join(', ')}`)
    .option('--pool <phase=pool>', 'send the phase PHASE to the workers of pool POOL, over its marker (repeatable; default: the marker\'s pool, else default)', collect)
    .option('--workdir <dir>', 'directory commands run in (default: $WORKDIR, else the current directory)')
    .option('--clean', 'empty the workdir before a new run (refuses /, your home, and unknown non-empty directories)')
    .option('--force-clean', 'with --clean: also empty a non-empty directory that never held a tasker run')
    .option('--stage <path>', 'copy a file or directory into the workdir after cleaning (repeatable)', collect)
    .option('--run-id <id>', 'name of the run (default: a timestamp); an unfinished run of that name is resumed')
    .option('--resume <id>', 'continue the run of that id; fails if there is none')
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
    .action(async (files: string[], flags: RunFlags) => {
      setExitCode(await runAction(files, flags, me));
    });
}

/** The options `status` and `purge` share: where the broker and Redis are, and the namespace. */
function addOpsOptions(command: Command): Command {
  return command
    .option('--amqp-url <url>', 'RabbitMQ (default: $AMQP_URL)')
    .option('--redis-url <url>', 'Redis (default: $REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--namespace <name>', 'prefix of queues and Redis keys (default: $TASKER_NAMESPACE, else tasker)')
    .exitOverride();
}

function addStatusCommand(program: Command, setExitCode: SetExitCode, me: string): Command {
  return addOpsOptions(program.command('status'))
    .description('Show a run. With AMQP_URL: from RabbitMQ and Redis (phase, counts, what runs where, queues, workers). Without, or with --workdir: from the files of the workdir.')
    .argument('[run-id]', 'the run (default: the latest one)')
    .option('--workdir <dir>', 'read the run from this workdir, without a broker (default: $WORKDIR, else the current directory, when AMQP_URL is unset)')
    .option('--json', 'print the status as JSON')
    .action(async (runId: string | undefined, flags: OpsFlags & { json?: boolean; workdir?: string }) => {
      const deps = localCliDeps(setExitCode);
      if (isLocalStatus(flags, deps)) {
        setExitCode(await localStatus(runId, flags, deps));
        return;
      }
      setExitCode(
        await withOps(flags, async (backend, names) => {
          const { collectStatus, formatStatus } = await import('./commands/ops-command.js');
          const report = await collectStatus(backend, names, runId);
          stdout.writeNow(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report, Date.now(), me));
          return ExitCode.ok;
        }),
      );
    });
}

function addPurgeCommand(program: Command, setExitCode: SetExitCode): Command {
  return addOpsOptions(program.command('purge'))
    .description("Remove a finished or abandoned run's queue, leftover messages and Redis keys.")
    .argument('<run-id>', 'the run')
    .option('--force', 'purge even a run whose tasker still sends heartbeats')
    .action(async (runId: string, flags: OpsFlags & { force?: boolean }) => {
      setExitCode(
        await withOps(flags, async (backend, names) => {
          const { purgeRun } = await import('./commands/ops-command.js');
          const report = await purgeRun(backend, names, runId, flags.force === true, Date.now());
          stdout.writeNow(
            `Purged run ${report.runId}: result queue ${report.queueDeleted ? 'deleted' : 'already gone'}, ${report.keysRemoved} Redis keys removed; workers will drop any of its commands still queued.\n`,
          );
          return ExitCode.ok;
        }),
      );
    });
}

async function withOps(flags: OpsFlags & { logLevel?: string }, action: (backend: Backend, names: Names) => Promise<number>): Promise<number> {
  const config = loadOpsConfig(flags, process.env);
  const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY === true, name: 'tasker' });
  const ns = namesFor(config.namespace);
  const { connectBackend } = await import('./distributed/distributed-backend.js');
  const backend = await connectBackend({ amqpUrl: config.amqpUrl, redisUrl: config.redisUrl, names: ns, logger });
  try {
    return await action(backend, ns);
  } finally {
    await backend.close();
  }
}

async function main(argv: string[]): Promise<number> {
  // The AWS SDK warns on every start under Node 20 that its 2027 releases will need Node 22. The
  // container images run the current LTS; on a laptop the notice would only bury our messages.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  let exitCode: number = ExitCode.ok;
  const program = buildProgram((code) => {
    exitCode = code;
  }, describeInvocation(invocationFacts(argv, process.env, process.cwd())));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version asked for are successful outputs (commander's exit code 0); every other
      // parser complaint is a usage error, including help shown because no subcommand was given.
      return error.exitCode === 0 && (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') ? ExitCode.ok : ExitCode.usage;
    }
    reportError(error);
    return error instanceof InputError ? error.exitCode : ExitCode.internal;
  }
  return exitCode;
}

const code = await main(process.argv);
// Let stdout drain before exiting (a piped summary or plan must not be cut short).
if (stdout.closed) process.exit(code);
else process.stdout.write('', () => process.exit(code));
