import type { Logger } from '../../shared/observe/logger.js';
import type { CommandSlots } from './command-slots.js';
import type { ExtraConsumers } from './extra-consumers.js';
import type { RunningCommands } from './running-commands.js';

/**
 * The lookahead: while every recent command was short (the last 5 to 20 all under a second), one
 * message more than the concurrency is held (an extra consumer) and handed to the executor early;
 * one that waited over a second behind long commands is handed back. Why: docs/architecture.md.
 */

export interface LookaheadOptions {
  concurrency: number;
  slots: Pick<CommandSlots, 'setLookahead' | 'draining' | 'handBackWaiting'>;
  running: Pick<RunningCommands, 'killWaitingSince'>;
  /** The worker's extra consumers: one is held while the lookahead is on. */
  extra: Pick<ExtraConsumers, 'begin'>;
  logger: Logger;
}

export interface Lookahead {
  /** A command that ran to its end here: its duration decides whether the lookahead is on. */
  commandFinished(durationMs: number): void;
  /** For shutdown (after the slots are drained): lookahead off (ExtraConsumers.stop cancels its consumer). */
  stop(): void;
}

const shortCommandMs = 1000;
const handBackAfterMs = 1000;

export function createLookahead(options: LookaheadOptions): Lookahead {
  const { concurrency, slots, running, extra, logger } = options;
  let lookahead: 0 | 1 = 0;
  /** Ends the hold on the lookahead's consumer; undefined while none is held. */
  let endHold: (() => void) | undefined;
  const recentDurationsMs: number[] = [];

  const setLookahead = (wanted: 0 | 1): void => {
    if (wanted === lookahead) return;
    lookahead = wanted;
    slots.setLookahead(wanted);
    logger.debug({ prefetch: concurrency + wanted }, 'lookahead changed');
    if (wanted === 1 && !slots.draining()) endHold ??= extra.begin();
    else {
      endHold?.();
      endHold = undefined;
    }
  };

  const handBackTimer = setInterval(() => {
    const cutoff = Date.now() - handBackAfterMs;
    // Handed to the executor early and still not started; then the messages waiting for a slot.
    const handedBack = running.killWaitingSince(cutoff, 'waited behind a long command') + slots.handBackWaiting(cutoff);
    if (handedBack > 0) {
      logger.info({ handedBack }, 'commands waited over a second behind long ones: handed back to the queue, lookahead off');
      recentDurationsMs.length = 0;
      setLookahead(0);
    }
  }, 250);
  handBackTimer.unref();

  return {
    commandFinished(durationMs) {
      recentDurationsMs.push(durationMs);
      if (recentDurationsMs.length > 20) recentDurationsMs.shift();
      if (slots.draining() || recentDurationsMs.length < 5) return;
      setLookahead(Math.max(...recentDurationsMs) < shortCommandMs ? 1 : 0);
    },
    stop() {
      clearInterval(handBackTimer);
      setLookahead(0);
    },
  };
}
