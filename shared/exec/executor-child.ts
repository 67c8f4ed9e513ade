import type { RunningCommand } from './executor-contract.js';
import { createExecutor } from './spawn-executor.js';
import type { HelperReply, HelperRequest } from './executor-process.js';

/**
 * Entry point of the executor helper process (see executor-process.ts). Runs commands on request
 * and sends each result back. When its parent goes away it kills the commands it started and exits.
 */

const settings = JSON.parse(process.env['TASKER_EXECUTOR_OPTIONS'] ?? '{}') as { shell?: string; directExec?: boolean };
delete process.env['TASKER_EXECUTOR_OPTIONS'];
const executor = createExecutor({ ...(settings.shell === undefined ? {} : { shell: settings.shell }), directExec: settings.directExec ?? true });
const running = new Map<number, RunningCommand>();

process.on('message', (message: HelperRequest) => {
  if (message.type === 'start') {
    const handle = executor.start(message.request);
    running.set(message.key, handle);
    void handle.result.then((result) => {
      running.delete(message.key);
      process.send?.({ type: 'result', key: message.key, result } satisfies HelperReply);
    });
  } else if (message.type === 'kill') {
    running.get(message.key)?.kill(message.reason);
  } else if (message.type === 'kill-all-now') {
    executor.killAllNow();
  }
});
// The parent died (or was killed): its running commands will be run again elsewhere or on resume,
// so they must not go on running here as orphans (the same command would then run twice).
process.on('disconnect', () => {
  executor.killAllNow();
  process.exit(0);
});
// Signals are the parent's business (it decides to kill commands); the helper just keeps serving.
// SIGHUP too: a shell that loses its terminal sends it to the whole process group, this helper included.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
process.on('SIGHUP', () => undefined);
