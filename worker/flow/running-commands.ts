import type { CommandMessage } from '../../shared/broker/messages.js';
import type { StartedCommand } from '../ports.js';

/**
 * The commands this worker has handed to its executor, and which of them it killed itself
 * (shutdown, or handed back before they started): those go back to the queue, not recorded.
 */

export interface TrackedCommand {
  command: StartedCommand;
  message: CommandMessage;
  /** When it was handed to the executor (ms since the epoch). */
  sinceMs: number;
}

export interface RunningCommands {
  readonly size: number;
  add(command: StartedCommand, message: CommandMessage): void;
  remove(command: StartedCommand): void;
  list(): TrackedCommand[];
  /** True for a command this worker killed to give it back to the queue. */
  killedForDrain(command: StartedCommand): boolean;
  killAll(reason: string): void;
  /** Kills the commands handed over early that are still waiting for the executor. */
  killNotStarted(reason: string): void;
  /** Kills the commands handed over at or before `cutoffMs` and still not started; returns how many. */
  killWaitingSince(cutoffMs: number, reason: string): number;
}

export function createRunningCommands(): RunningCommands {
  const running = new Map<StartedCommand, { message: CommandMessage; sinceMs: number }>();
  const drainKilled = new WeakSet<StartedCommand>();
  const killForDrain = (command: StartedCommand, reason: string): void => {
    drainKilled.add(command);
    command.kill(reason);
  };
  return {
    get size() {
      return running.size;
    },
    add: (command, message) => running.set(command, { message, sinceMs: Date.now() }),
    remove: (command) => running.delete(command),
    list: () => [...running].map(([command, { message, sinceMs }]) => ({ command, message, sinceMs })),
    killedForDrain: (command) => drainKilled.has(command),
    killAll(reason) {
      for (const command of running.keys()) killForDrain(command, reason);
    },
    killNotStarted(reason) {
      for (const command of running.keys()) {
        if (!command.started()) killForDrain(command, reason);
      }
    },
    killWaitingSince(cutoffMs, reason) {
      let killed = 0;
      for (const [command, { sinceMs }] of running) {
        if (sinceMs > cutoffMs || command.started() || drainKilled.has(command)) continue;
        killForDrain(command, reason);
        killed++;
      }
      return killed;
    },
  };
}
