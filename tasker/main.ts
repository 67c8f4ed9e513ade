import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { commandEnvironment, secretsHeld } from '../shared/config/config-values.js';
import { redactedArgv } from '../shared/config/urls.js';
import { cancelHelp, planHelp, purgeHelp, reportHelp, runHelp, runsHelp, statusHelp } from './help-text.js';
import type { CommandDeps, OpsCommandDeps } from './commands/command-deps.js';
import { addCancelCommand } from './commands/cancel-command.js';
import { addCompletionCommand } from './commands/completion-command.js';
import { addPlanCommand } from './commands/plan-command.js';
import { addPurgeCommand } from './commands/purge-command.js';
import { addReportCommand } from './commands/report-command.js';
import { addRunCommand } from './commands/run-command.js';
import { addRunsCommand } from './commands/runs-command.js';
import { addStatusCommand } from './commands/status-command.js';
import { removeScratchDirsSync } from './jobs/scratch-dirs.js';
import { errorMessage, ExitCode, InputError } from '../shared/errors.js';
import { noteHangUp, releaseClosedTerminal } from '../shared/cli/hangup.js';
import { createStdout, isClosedStdoutError } from '../shared/cli/stdout.js';
import { createCommandExecutor } from '../shared/exec/command-executor.js';
import { commandUserEnvironment, sayCommandUser, setUpCommandUser } from '../shared/exec/command-user.js';
import { guardRunRecords } from '../shared/run-dir/run-records-guard.js';
import { createLogger, logConfigWarnings, type Logger } from '../shared/observe/logger.js';
import type { MetricsServer } from '../shared/observe/metrics-server.js';
import { loadRunConfig, type RunFlags } from './config.js';
import { runRun } from './run/prepare-run.js';
import { placementOf } from '../shared/state/placement.js';
import { hostname } from 'node:os';
import { describeInvocation, invocationFacts } from '../shared/cli/invocation.js';

/** Composition root of the tasker: parses the command line, dispatches to the subcommands (commands/), wires a run, handles signals, owns the exit code. */

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * When stdout's reader goes away (`tasker plan --json FILE | head`), a command whose only product
 * is what it prints ends at once, quietly, exit 0. A run does not: its record is on disk, so it
 * finishes and exits with its own code; only the printed summary is lost.
 */
let runInProgress = false;
const stdout = createStdout(process.stdout, (error) => {
  if (!isClosedStdoutError(error, process.stdout.isTTY === true)) process.stderr.write(`tasker: cannot write to stdout: ${errorMessage(error)}\n`);
  if (runInProgress) return;
  removeScratchDirsSync();
  process.exit(isClosedStdoutError(error, process.stdout.isTTY === true) ? ExitCode.ok : ExitCode.internal);
});
const writeStdout = stdout.write;
// A terminal that closed (SIGHUP, then EIO on the progress line): nothing is left to tell, and the run still ends cleanly.
process.stderr.on('error', () => undefined);
/** Each ends a run the same way: its commands stopped and recorded, the run resumable. */
const stopSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

async function runAction(files: string[], flags: RunFlags, me: string): Promise<number> {
  runInProgress = true;
  const config = loadRunConfig(files, flags, process.env, process.cwd());
  const commandUser = await setUpCommandUser(config.commandUser);
  const terminal = process.stderr.isTTY ? process.stderr : undefined;
  const logger = createLogger({ level: config.logLevel, pretty: terminal !== undefined, name: 'tasker' });
  logConfigWarnings(logger, config.warnings);
  const commandEnv = { ...commandEnvironment(process.env), ...(commandUser === undefined ? {} : commandUserEnvironment(commandUser)) };
  const executor = createCommandExecutor({
    slots: config.concurrency,
    directExec: config.directExec,
    env: commandEnv,
    ...(commandUser === undefined ? {} : { user: commandUser }),
    onRunnerError: (message) => logger.warn({ runner: message }, 'command runner reported a problem'),
  });
  const controller = new AbortController();
  let signals = 0;
  let prepared = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGHUP') noteHangUp();
    signals++;
    if (!prepared) {
      // Still checking input or connecting (a jobs file that is a FIFO nobody writes, a slow
      // broker): nothing has run or changed, so there is nothing to stop or record.
      process.stderr.write(`tasker: interrupted (${signal}) before anything ran\n`);
      removeScratchDirsSync();
      releaseClosedTerminal();
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
  // SIGHUP: the terminal closed (or a logout); the run ends as after Ctrl-C, resumable.
  for (const signal of stopSignals) process.on(signal, onSignal);
  let metricsServer: MetricsServer | undefined;
  try {
    if (config.metricsPort !== undefined) {
      // Loaded only when asked for (a Kubernetes Job's probes and scrapes): local runs stay lean.
      const { createMetricsServer } = await import('../shared/observe/metrics-server.js');
      metricsServer = await createMetricsServer({ port: config.metricsPort, host: config.metricsHost, logger, role: 'tasker' });
      metricsServer.setReadiness(() => ({ ok: true, detail: 'ok: running' }));
    }
    return await runRun(config, {
      logger,
      executor,
      commandEnv,
      metrics: metricsServer?.metrics,
      placement: placementOf(process.env, { hostname: hostname(), version: packageJson.version, slots: config.concurrency }),
      writeOut: stdout.writeNow,
      terminal,
      cwd: process.cwd(),
      invocation: me,
      signal: controller.signal,
      now: Date.now,
      onPrepared: () => {
        prepared = true;
        // Once the run will go on: a start that fails says one thing only.
        sayCommandUser(logger, commandUser, secretsHeld(config, process.env), 'TASKER_COMMAND_USER');
      },
      ...(commandUser === undefined ? {} : { guardWorkdir: (workdir: string, created: boolean) => guardRunRecords(workdir, commandUser, 'TASKER_COMMAND_USER', created) }),
    });
  } catch (error) {
    reportError(error, logger);
    return error instanceof InputError ? error.exitCode : ExitCode.internal;
  } finally {
    for (const signal of stopSignals) process.off(signal, onSignal);
    // Until the exit: a hang-up now only changes how the process exits (releaseClosedTerminal), not its code.
    process.on('SIGHUP', noteHangUp);
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

function commandDeps(setExitCode: SetExitCode): CommandDeps {
  return { env: process.env, cwd: process.cwd(), write: stdout.write, now: Date.now, setExitCode };
}

function opsCommandDeps(setExitCode: SetExitCode, me: string): OpsCommandDeps {
  return { ...commandDeps(setExitCode), writeNow: stdout.writeNow, invocation: me, prettyLogs: process.stderr.isTTY === true };
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
  addPlanCommand(program, { write: writeStdout, env: process.env, cwd: process.cwd(), setExitCode }).addHelpText('after', planHelp(me));
  addRunCommand(program, { run: (files, flags) => runAction(files, flags, me), setExitCode }).addHelpText('after', runHelp(me));
  addStatusCommand(program, opsCommandDeps(setExitCode, me)).addHelpText('after', statusHelp(me));
  addCancelCommand(program, opsCommandDeps(setExitCode, me)).addHelpText('after', cancelHelp(me));
  addPurgeCommand(program, opsCommandDeps(setExitCode, me)).addHelpText('after', purgeHelp(me));
  addRunsCommand(program, opsCommandDeps(setExitCode, me), runsHelp(me));
  addReportCommand(program, { ...commandDeps(setExitCode), invocation: me }, reportHelp(me));
  addCompletionCommand(program, stdout.write, setExitCode);
  return program;
}

async function main(argv: string[]): Promise<number> {
  // Passwords given as flags leave /proc/PID/cmdline, which every process of the machine can read.
  const title = redactedArgv(argv);
  if (title !== undefined) process.title = title.join(' ');
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
// Let stdout drain before exiting (a piped summary must not be cut short); after a hang-up there is no one to drain to.
if (releaseClosedTerminal() || stdout.closed) process.exit(code);
else process.stdout.write('', () => process.exit(code));
