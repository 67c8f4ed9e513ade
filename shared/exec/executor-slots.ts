import type { ExecuteRequest, ExecutionResult, Executor, RunningCommand, StartOptions } from './executor-contract.js';

/**
 * At most `slots` commands run at once; more wait here, in order, and start the moment one
 * ends. Callers may thus hand over the next command early (a worker's prefetched message),
 * so it starts without a round trip to Redis or the broker. A waiting command that is killed
 * ends at once as `killed`, never having run. `beforeStart` is asked with a slot reserved: a
 * command it refuses ends the same way.
 */
export function withSlots(inner: Executor, slots: number): Executor {
  let running = 0;
  const waiting: WaitingCommand[] = [];
  /** Slot reserved, `beforeStart` not answered yet. */
  const asking = new Set<WaitingCommand>();
  const slotFreed = (): void => {
    running--;
    next(); // the next command starts before this one's result is handled
  };
  const next = (): void => {
    while (running < slots && waiting.length > 0) {
      running++;
      waiting.shift()!.begin();
    }
  };
  return {
    start(request, options): RunningCommand {
      const command = new WaitingCommand(inner, request, options, slotFreed, asking);
      waiting.push(command);
      next();
      return {
        result: command.result,
        started: () => command.handle !== undefined,
        whenStarted: command.whenStarted,
        kill(reason) {
          const index = waiting.indexOf(command);
          if (index >= 0) waiting.splice(index, 1);
          command.kill(reason);
        },
      };
    },
    killAllNow() {
      for (const command of waiting.splice(0)) command.cancel('killed');
      for (const command of asking) command.kill('killed');
      inner.killAllNow();
    },
  };
}

/** One command from hand-over to its end: waiting, asking `beforeStart` (slot reserved), running. */
class WaitingCommand {
  handle: RunningCommand | undefined;
  readonly result: Promise<ExecutionResult>;
  readonly whenStarted: Promise<boolean>;
  private settle!: (result: ExecutionResult) => void;
  private settleStarted!: (started: boolean) => void;
  private ended = false;
  /** Killed while `beforeStart` was being answered: it never starts. */
  private killedWhileAsking: string | undefined;

  constructor(
    private readonly inner: Executor,
    private readonly request: ExecuteRequest,
    private readonly options: StartOptions | undefined,
    private readonly slotFreed: () => void,
    private readonly asking: Set<WaitingCommand>,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
    this.whenStarted = new Promise((resolve) => (this.settleStarted = resolve));
  }

  /** Called with a slot reserved for it. */
  begin(): void {
    const answer = this.options?.beforeStart?.() ?? true;
    if (answer === true) return this.run();
    if (answer === false) return this.refuse('not started: the worker no longer holds this command');
    this.asking.add(this);
    answer.then(
      (ok) => (ok ? this.run() : this.refuse('not started: the worker no longer holds this command')),
      (error: unknown) => this.refuse(`not started: could not check before starting (${String(error)})`),
    );
  }

  kill(reason: string): void {
    if (this.handle !== undefined) this.handle.kill(reason);
    else if (this.asking.has(this)) this.killedWhileAsking = reason;
    else this.cancel(reason);
  }

  /** Ends it unstarted, as `killed`. */
  cancel(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.settleStarted(false);
    const now = new Date().toISOString();
    this.settle({ outcome: 'killed', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `${reason} (before it started)` });
  }

  private run(): void {
    this.asking.delete(this);
    if (this.killedWhileAsking !== undefined) return this.refuse(this.killedWhileAsking);
    let handle: RunningCommand;
    try {
      handle = this.inner.start(this.request);
    } catch (error) {
      return this.failed(error); // e.g. its log directory cannot be made: a result, and the slot back
    }
    this.handle = handle;
    this.settleStarted(true);
    handle.result.then(
      (outcome) => this.end(outcome),
      (error: unknown) => this.failed(error),
    );
  }

  private end(outcome: ExecutionResult): void {
    this.slotFreed();
    this.ended = true;
    this.settle(outcome);
  }

  /** The executor itself failed: the attempt ends as a spawn error, never hanging its slot. */
  private failed(error: unknown): void {
    this.settleStarted(this.handle !== undefined);
    const now = new Date().toISOString();
    this.end({ outcome: 'spawn-error', exitCode: null, signal: null, startedAt: now, finishedAt: now, durationMs: 0, tail: '', reason: `could not run it: ${String(error)}` });
  }

  private refuse(reason: string): void {
    this.asking.delete(this);
    this.slotFreed();
    this.cancel(reason);
  }
}
