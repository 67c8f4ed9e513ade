import type { CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { CommandSlots } from './command-slots.js';
import type { ExtraConsumers } from './extra-consumers.js';
import type { RunningCommands } from './running-commands.js';

/**
 * The lookahead: while every recent command was short (the last 5 to 20 all under a second) and
 * the worker is busy, one message more than the concurrency is held (an extra consumer) and handed
 * to the executor early. Only a message of a phase known here to be short is held; others go back
 * at once, and one that waited over a second behind long commands goes back. Why: docs/architecture.md.
 */

export interface LookaheadOptions {
  concurrency: number;
  slots: Pick<CommandSlots, 'setLookahead' | 'draining' | 'handBackWaiting'>;
  running: Pick<RunningCommands, 'killWaitingSince'>;
  /** The worker's extra consumers: one is held while the lookahead is on. */
  extra: Pick<ExtraConsumers, 'begin'>;
  logger: Logger;
}

/** What the lookahead reads of a message to decide whether to hold it. */
export type HeldMessage = Pick<CommandMessage, 'runId' | 'phase' | 'id' | 'attempt'>;

export interface Lookahead {
  /** A command that ran to its end here: its duration decides whether the lookahead is on. */
  commandFinished(durationMs: number, message?: HeldMessage): void;
  /**
   * No slot is free for this message: may it wait here (held ahead)? Yes when its phase's recent
   * commands here were all short, or when it came back after this worker handed it back once.
   * No (the lookahead goes off, the message is to go back to the queue) otherwise.
   */
  mayHold(message: HeldMessage): boolean;
  /** Nothing is in flight here: the lookahead goes off, so an idle worker takes one message only. */
  idle(): void;
  /** For shutdown (after the slots are drained): lookahead off (ExtraConsumers.stop cancels its consumer). */
  stop(): void;
}

const shortCommandMs = 1000;
const handBackAfterMs = 1000;
/** The recent durations kept, overall and per phase; at least `minRecent` before they count. */
const maxRecent = 20;
const minRecent = 5;
/** Phases whose recent durations are kept (the oldest forgotten first). */
const maxPhases = 32;
/** A message handed back at once and back here within this long is held (no ping-pong with the queue). */
const rememberHandedBackMs = 30_000;

export function createLookahead(options: LookaheadOptions): Lookahead {
  const { concurrency, slots, running, extra, logger } = options;
  let lookahead: 0 | 1 = 0;
  /** Ends the hold on the lookahead's consumer; undefined while none is held. */
  let endHold: (() => void) | undefined;
  const recentDurationsMs: number[] = [];
  const phases = createPhaseDurations();
  /** Messages handed back at once (by attempt), with when. */
  const handedBack = new Map<string, number>();

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
    const count = running.killWaitingSince(cutoff, 'waited behind a long command') + slots.handBackWaiting(cutoff);
    if (count > 0) {
      logger.info({ handedBack: count }, 'commands waited over a second behind long ones: handed back to the queue, lookahead off');
      recentDurationsMs.length = 0;
      setLookahead(0);
    }
  }, 250);
  handBackTimer.unref();

  return {
    commandFinished(durationMs, message) {
      pushRecent(recentDurationsMs, durationMs);
      if (message !== undefined) phases.add(message, durationMs);
      if (slots.draining() || recentDurationsMs.length < minRecent) return;
      setLookahead(allShort(recentDurationsMs) ? 1 : 0);
    },
    mayHold(message) {
      if (phases.short(message)) return true;
      const now = Date.now();
      for (const [key, at] of handedBack) if (at < now - rememberHandedBackMs) handedBack.delete(key);
      const key = attemptKey(message);
      if (handedBack.delete(key)) return true;
      handedBack.set(key, now);
      logger.info({ runId: message.runId, phase: message.phase, commandId: message.id, attempt: message.attempt }, 'not held ahead of running commands (its phase is not known here to be short): back to the queue for an idle worker, lookahead off');
      recentDurationsMs.length = 0;
      setLookahead(0);
      return false;
    },
    idle: () => setLookahead(0),
    stop() {
      clearInterval(handBackTimer);
      setLookahead(0);
    },
  };
}

function pushRecent(recent: number[], durationMs: number): void {
  recent.push(durationMs);
  if (recent.length > maxRecent) recent.shift();
}

const allShort = (recent: readonly number[]): boolean => recent.length >= minRecent && Math.max(...recent) < shortCommandMs;

const attemptKey = (message: HeldMessage): string => `${message.runId}\n${message.phase}\n${message.id}\n${message.attempt}`;

/** The recent durations of each phase (of a run) whose commands ran here, for the last `maxPhases` phases. */
function createPhaseDurations(): { add(message: HeldMessage, durationMs: number): void; short(message: HeldMessage): boolean } {
  const byPhase = new Map<string, number[]>();
  const phaseKey = (message: HeldMessage): string => `${message.runId}\n${message.phase}`;
  return {
    add(message, durationMs) {
      const key = phaseKey(message);
      const recent = byPhase.get(key) ?? [];
      // Re-inserted: the map's order is the phases' last use, the first one the least recent.
      byPhase.delete(key);
      byPhase.set(key, recent);
      pushRecent(recent, durationMs);
      if (byPhase.size > maxPhases) byPhase.delete(byPhase.keys().next().value!);
    },
    short: (message) => allShort(byPhase.get(phaseKey(message)) ?? []),
  };
}
