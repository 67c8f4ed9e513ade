import type { ExecutionResult, Executor, RunningCommand } from './executor.js';

/**
 * At most `slots` commands run at once; more wait here, in order, and start the moment one
 * ends. Callers may thus hand over the next command early (a worker's prefetched message),
 * so it starts without a round trip to Redis or the broker. A waiting command that is killed
 * ends at once as `killed`, never having run.
 */
export function withSlots(inner: Executor, slots: number): Executor {
  let running = 0;
  const waiting: { begin: () => void; cancel: (reason: string) => void }[] = [];

  const next = (): void => {
    while (running < slots && waiting.length > 0) waiting.shift()!.begin();
  };

  return {
    start(request): RunningCommand {
      let handle: RunningCommand | undefined;
      let settle!: (result: ExecutionResult) => void;
      let settleStarted!: (started: boolean) => void;
      const whenStarted = new Promise<boolean>((resolve) => {
        settleStarted = resolve;
      });
      const result = new Promise<ExecutionResult>((resolve) => {
        settle = resolve;
      });
      const entry = {
        begin: () => {
          running++;
          handle = inner.start(request);
          settleStarted(true);
          void handle.result.then((outcome) => {
            running--;
            next(); // the next command starts before this one's result is handled
            settle(outcome);
          });
        },
        cancel: (reason: string) => {
          settleStarted(false);
          const now = new Date().toISOString();
          settle({ outcome: 'killed', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `${reason} (before it started)` });
        },
      };
      waiting.push(entry);
      next();
      return {
        result,
        started: () => handle !== undefined,
        whenStarted,
        kill(reason) {
          if (handle !== undefined) {
            handle.kill(reason);
            return;
          }
          const index = waiting.indexOf(entry);
          if (index < 0) return;
          waiting.splice(index, 1);
          entry.cancel(reason);
        },
      };
    },
    killAllNow() {
      for (const entry of waiting.splice(0)) entry.cancel('killed');
      inner.killAllNow();
    },
  };
}
