import { createExecutor, type RunningCommand } from './executor.js';
import type { HelperReply, HelperRequest } from './executor-process.js';

/**
 * Entry point of the executor helper process (see executor-process.ts). Runs commands on request
 * and sends each result back. Exits when its parent goes away; commands already started keep
 * running in their own process groups, as they would had the parent spawned them itself.
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
process.on('disconnect', () => process.exit(0));
// Signals are the parent's business (it decides to kill commands); the helper just keeps serving.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
