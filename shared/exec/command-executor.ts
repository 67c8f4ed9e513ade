import { findShell, type Executor, type ExecutorOptions } from './executor.js';
import { createExecutorProcess } from './executor-process.js';
import { withSlots } from './executor-slots.js';
import { createResourceMeter, type ResourceMeterOptions } from './resource-meter.js';
import { createRunnerExecutor, isBash } from './shell-runner.js';

/**
 * The executor the tasker and the worker use: bash runners (shell-runner.ts) when bash is
 * there, else spawn() in a small helper process (executor-process.ts). Both behave the same;
 * the runners cost less per command. At most `slots` commands run at once; more wait their turn.
 */
export function createCommandExecutor(
  options: ExecutorOptions & {
    slots: number;
    /** The environment commands run with (config-values' commandEnvironment: secrets withheld). No default. */
    env: NodeJS.ProcessEnv;
    onRunnerError?: (message: string) => void;
    /** Each memory sample of a running command (resource-meter.ts); with bash runners only. */
    onSample?: ResourceMeterOptions['onSample'];
  },
): Executor {
  const env = options.env;
  const shell = options.shell ?? findShell(env['PATH']);
  // Options imported from the environment would apply to the runners' own script too.
  const shellOptionsSet = env['SHELLOPTS'] !== undefined || env['BASHOPTS'] !== undefined;
  if (isBash(shell) && !shellOptionsSet) {
    const runners = createRunnerExecutor({
      shell,
      env,
      ...(options.directExec === undefined ? {} : { directExec: options.directExec }),
      ...(options.onRunnerError === undefined ? {} : { onRunnerError: options.onRunnerError }),
      ...(options.user === undefined ? {} : { user: options.user }),
      meter: createResourceMeter(options.onSample === undefined ? {} : { onSample: options.onSample }),
    });
    return withSlots(runners, options.slots);
  }
  return withSlots(createExecutorProcess({ ...options, shell }), options.slots);
}
