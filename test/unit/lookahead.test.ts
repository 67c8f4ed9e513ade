import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLookahead, type HeldMessage, type Lookahead, type LookaheadOptions } from '../../worker/flow/lookahead.js';

/** The lookahead with plain fakes of the slots, running commands and extra consumers that record their calls; fake timers. */

function fakes(options: { draining?: boolean; waitingKilled?: number; waitersHandedBack?: number } = {}) {
  const calls: string[] = [];
  const cutoffs: number[] = [];
  let draining = options.draining ?? false;
  const slots: LookaheadOptions['slots'] = {
    setLookahead: (extra) => void calls.push(`setLookahead(${extra})`),
    draining: () => draining,
    handBackWaiting: (cutoffMs) => {
      cutoffs.push(cutoffMs!);
      return options.waitersHandedBack ?? 0;
    },
  };
  const running: LookaheadOptions['running'] = {
    killWaitingSince: (cutoffMs) => {
      cutoffs.push(cutoffMs);
      return options.waitingKilled ?? 0;
    },
  };
  const extra: LookaheadOptions['extra'] = {
    begin: () => {
      calls.push('begin');
      return () => void calls.push('end');
    },
  };
  const lookahead = createLookahead({ concurrency: 2, slots, running, extra, logger: pino({ level: 'silent' }) });
  return { calls, cutoffs, lookahead, drain: () => void (draining = true) };
}

/** `count` commands (of `message`'s phase, if given) that ran for `durationMs` each. */
function finish(lookahead: Lookahead, count: number, durationMs: number, message?: HeldMessage): void {
  for (let i = 0; i < count; i++) lookahead.commandFinished(durationMs, message);
}

const shortPhase: HeldMessage = { runId: 'r1', phase: 'short', id: 'f1-L2', attempt: 1 };
const longPhase: HeldMessage = { runId: 'r1', phase: 'long', id: 'f1-L30', attempt: 1 };

beforeEach(() => vi.useFakeTimers({ now: 100_000 }));
afterEach(() => vi.useRealTimers());

describe('the lookahead', () => {
  it('stays off until 5 commands finished', () => {
    const f = fakes();
    finish(f.lookahead, 4, 10);
    expect(f.calls).toEqual([]);
  });

  it('turns on at the fifth short command: one slot more and one extra consumer', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });

  it('stays on, with the one consumer, while commands stay short', () => {
    const f = fakes();
    finish(f.lookahead, 30, 10);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });

  it('stays off when one of the last five took a second (not under it)', () => {
    const f = fakes();
    finish(f.lookahead, 2, 10);
    f.lookahead.commandFinished(1000);
    finish(f.lookahead, 2, 10);
    expect(f.calls).toEqual([]);
  });

  it('turns off when a long command comes, ending its consumer', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    f.lookahead.commandFinished(5000);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end']);
  });

  it('stays off while the long command is among the last 20', () => {
    const f = fakes();
    f.lookahead.commandFinished(5000);
    finish(f.lookahead, 19, 10);
    expect(f.calls).toEqual([]);
  });

  it('turns on again once the long command left the last 20', () => {
    const f = fakes();
    f.lookahead.commandFinished(5000);
    finish(f.lookahead, 20, 10);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });

  it('is not switched on while draining', () => {
    const f = fakes({ draining: true });
    finish(f.lookahead, 10, 10);
    expect(f.calls).toEqual([]);
  });

  it('is not switched off by a long command while draining (stop does that)', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    f.drain();
    f.lookahead.commandFinished(5000);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });
});

describe('holding a message ahead', () => {
  it('holds a message of a phase whose last 5 commands here were short', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10, shortPhase);
    expect(f.lookahead.mayHold({ ...shortPhase, id: 'f1-L9' })).toBe(true);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });

  it('does not hold the first message of a phase (nor of a run): lookahead off, its consumer ended', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10, shortPhase);
    expect(f.lookahead.mayHold(longPhase)).toBe(false);
    expect(f.lookahead.mayHold({ ...shortPhase, runId: 'r2' })).toBe(false);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end']);
  });

  it('does not hold a message of a phase with a long command among its recent ones', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10, shortPhase);
    f.lookahead.commandFinished(1500, shortPhase);
    finish(f.lookahead, 5, 10, shortPhase);
    expect(f.lookahead.mayHold(shortPhase)).toBe(false);
  });

  it('holds a message that comes back after it was handed back here (no ping-pong with the queue), once', () => {
    const f = fakes();
    expect(f.lookahead.mayHold(longPhase)).toBe(false);
    expect(f.lookahead.mayHold(longPhase)).toBe(true);
    expect(f.lookahead.mayHold(longPhase)).toBe(false);
  });

  it('forgets a message handed back over 30 s ago', () => {
    const f = fakes();
    expect(f.lookahead.mayHold(longPhase)).toBe(false);
    vi.setSystemTime(100_000 + 31_000);
    expect(f.lookahead.mayHold(longPhase)).toBe(false);
  });

  it('forgets the recent durations when it hands one back: 5 short commands again before it is on', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10, shortPhase);
    f.lookahead.mayHold(longPhase);
    f.calls.length = 0;
    finish(f.lookahead, 4, 10, shortPhase);
    expect(f.calls).toEqual([]);
  });
});

describe('an idle worker', () => {
  it('turns the lookahead off, ending its consumer, and on again at the next short command', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    f.lookahead.idle();
    finish(f.lookahead, 1, 10);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end', 'setLookahead(1)', 'begin']);
  });

  it('changes nothing when the lookahead was off', () => {
    const f = fakes();
    f.lookahead.idle();
    expect(f.calls).toEqual([]);
  });
});

describe('the hand-back timer', () => {
  it('looks every 250 ms for commands handed over and messages waiting since over a second ago', async () => {
    const f = fakes();
    await vi.advanceTimersByTimeAsync(500);
    // Each look: the commands handed to the executor early, then the slot waiters, with one cutoff.
    expect(f.cutoffs).toEqual([99_250, 99_250, 99_500, 99_500]);
  });

  it('turns the lookahead off when a command handed over early is handed back', async () => {
    const f = fakes({ waitingKilled: 1 });
    finish(f.lookahead, 5, 10);
    await vi.advanceTimersByTimeAsync(250);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end']);
  });

  it('turns the lookahead off when a message waiting for a slot is handed back', async () => {
    const f = fakes({ waitersHandedBack: 2 });
    finish(f.lookahead, 5, 10);
    await vi.advanceTimersByTimeAsync(250);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end']);
  });

  it('keeps the lookahead on when nothing is handed back', async () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.calls).toEqual(['setLookahead(1)', 'begin']);
  });

  it('forgets the recent durations on a hand-back: 5 short commands again before it is on', async () => {
    const f = fakes({ waitingKilled: 1 });
    finish(f.lookahead, 5, 10);
    await vi.advanceTimersByTimeAsync(250);
    f.calls.length = 0;
    finish(f.lookahead, 4, 10);
    expect(f.calls).toEqual([]);
  });
});

describe('stopping the lookahead', () => {
  it('turns it off and ends its consumer', () => {
    const f = fakes();
    finish(f.lookahead, 5, 10);
    f.lookahead.stop();
    expect(f.calls).toEqual(['setLookahead(1)', 'begin', 'setLookahead(0)', 'end']);
  });

  it('changes nothing when it was off', () => {
    const f = fakes();
    f.lookahead.stop();
    expect(f.calls).toEqual([]);
  });

  it('clears the hand-back timer', async () => {
    const f = fakes();
    f.lookahead.stop();
    await vi.advanceTimersByTimeAsync(2000);
    expect(f.cutoffs).toEqual([]);
  });
});
