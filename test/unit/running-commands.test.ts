import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommandMessage } from '../../shared/broker/messages.js';
import type { StartedCommand } from '../../worker/ports.js';
import { createRunningCommands } from '../../worker/flow/running-commands.js';

/** The commands a worker handed to its executor, with fake commands that record their kills. */

const message = (id: string): CommandMessage => ({
  v: 1,
  kind: 'command',
  runId: 'r1',
  phase: 'sims',
  phaseIndex: 0,
  id,
  attempt: 1,
  command: 'true',
  file: 'jobs.sh',
  line: 1,
  timeoutMs: null,
  killGraceMs: 1000,
  replyTo: 'tasker.run.r1.done',
});

type FakeCommand = StartedCommand & { kills: string[] };

function command(started: boolean): FakeCommand {
  const kills: string[] = [];
  return {
    kills,
    result: new Promise(() => undefined),
    kill: (reason) => void kills.push(reason),
    started: () => started,
    whenStarted: Promise.resolve(started),
    log: 'logs/x.1.log',
  };
}

beforeEach(() => vi.useFakeTimers({ now: 50_000 }));
afterEach(() => vi.useRealTimers());

describe('running commands', () => {
  it('lists what was added, with its message and when', () => {
    const running = createRunningCommands();
    const one = command(true);
    running.add(one, message('a'));
    expect(running.list()).toEqual([{ command: one, message: message('a'), sinceMs: 50_000 }]);
  });

  it('counts what was added and not removed', () => {
    const running = createRunningCommands();
    const one = command(true);
    running.add(one, message('a'));
    running.add(command(true), message('b'));
    running.remove(one);
    expect(running.size).toBe(1);
  });

  it('no longer lists a removed command', () => {
    const running = createRunningCommands();
    const one = command(true);
    const two = command(true);
    running.add(one, message('a'));
    running.add(two, message('b'));
    running.remove(one);
    expect(running.list().map((tracked) => tracked.command)).toEqual([two]);
  });

  it('says killed for drain only for the commands it killed itself', () => {
    const running = createRunningCommands();
    const notStarted = command(false);
    const started = command(true);
    running.add(notStarted, message('a'));
    running.add(started, message('b'));
    running.killNotStarted('worker shutdown');
    expect([running.killedForDrain(notStarted), running.killedForDrain(started)]).toEqual([true, false]);
  });

  it('still says killed for drain once the command is removed (its result is judged after)', () => {
    const running = createRunningCommands();
    const one = command(true);
    running.add(one, message('a'));
    running.killAll('worker shutdown');
    running.remove(one);
    expect(running.killedForDrain(one)).toBe(true);
  });

  it('kills every command with the reason on killAll', () => {
    const running = createRunningCommands();
    const started = command(true);
    const notStarted = command(false);
    running.add(started, message('a'));
    running.add(notStarted, message('b'));
    running.killAll('worker shutdown');
    expect([started.kills, notStarted.kills]).toEqual([['worker shutdown'], ['worker shutdown']]);
  });

  it('kills only the commands not started yet on killNotStarted', () => {
    const running = createRunningCommands();
    const started = command(true);
    const notStarted = command(false);
    running.add(started, message('a'));
    running.add(notStarted, message('b'));
    running.killNotStarted('worker shutdown');
    expect([started.kills, notStarted.kills]).toEqual([[], ['worker shutdown']]);
  });
});

describe('killing the commands that waited since a cutoff', () => {
  it('kills the ones not started, handed over at or before the cutoff, and counts them', () => {
    const running = createRunningCommands();
    const early = command(false);
    running.add(early, message('a'));
    vi.setSystemTime(51_000);
    const atCutoff = command(false);
    running.add(atCutoff, message('b'));
    expect(running.killWaitingSince(51_000, 'waited behind a long command')).toBe(2);
    expect([early.kills, atCutoff.kills]).toEqual([['waited behind a long command'], ['waited behind a long command']]);
  });

  it('skips the ones handed over after the cutoff', () => {
    const running = createRunningCommands();
    vi.setSystemTime(51_001);
    const newer = command(false);
    running.add(newer, message('a'));
    expect(running.killWaitingSince(51_000, 'waited')).toBe(0);
    expect(newer.kills).toEqual([]);
  });

  it('skips the ones already started', () => {
    const running = createRunningCommands();
    const started = command(true);
    running.add(started, message('a'));
    expect(running.killWaitingSince(60_000, 'waited')).toBe(0);
    expect(started.kills).toEqual([]);
  });

  it('skips the ones it already killed, and does not count them again', () => {
    const running = createRunningCommands();
    const waiting = command(false);
    running.add(waiting, message('a'));
    running.killWaitingSince(60_000, 'waited');
    expect(running.killWaitingSince(60_000, 'waited')).toBe(0);
    expect(waiting.kills).toEqual(['waited']);
  });

  it('marks the ones it kills as killed for drain (they go back to the queue)', () => {
    const running = createRunningCommands();
    const waiting = command(false);
    running.add(waiting, message('a'));
    running.killWaitingSince(60_000, 'waited');
    expect(running.killedForDrain(waiting)).toBe(true);
  });
});
