import { describe, expect, it } from 'vitest';
import { allocateSlots, shareView, shareWindow, type RunDemand } from '../../shared/state/fair-share.js';
import { createAwaitedAttempts } from '../../tasker/distributed/result-inbox.js';
import { loadRunConfig } from '../../tasker/config.js';
import { InputError } from '../../shared/errors.js';

const run = (runId: string, demand: number, priority: RunDemand['priority'] = 'normal', inFlight = 0): RunDemand => ({ runId, priority, demand, inFlight, phase: 'sims', at: 0 });

describe('allocateSlots', () => {
  it('gives a lone run every slot it can use', () => {
    expect(allocateSlots(8, [run('a', 3000)])).toEqual(new Map([['a', 8]]));
    expect(allocateSlots(8, [run('a', 3)])).toEqual(new Map([['a', 3]]));
  });

  it('splits equally between runs of one priority, whatever their size', () => {
    expect(allocateSlots(8, [run('big', 3000), run('small', 40)])).toEqual(new Map([['big', 4], ['small', 4]]));
    const three = allocateSlots(9, [run('a', 100), run('b', 100), run('c', 100)]);
    expect([...three.values()]).toEqual([3, 3, 3]);
  });

  it('gives what a run cannot use to the others (no slot idles while a run has work)', () => {
    const shares = allocateSlots(8, [run('big', 3000), run('tiny', 2), run('mid', 100)]);
    expect(shares.get('tiny')).toBe(2);
    expect(shares.get('big')).toBe(3);
    expect(shares.get('mid')).toBe(3);
    expect([...shares.values()].reduce((a, b) => a + b)).toBe(8);
  });

  it('serves a higher priority first, and lower ones only with what is left', () => {
    expect(allocateSlots(8, [run('low', 3000, 'low'), run('high', 40, 'high'), run('normal', 500)])).toEqual(
      new Map([
        ['high', 8],
        ['normal', 0],
        ['low', 0],
      ]),
    );
    const left = allocateSlots(8, [run('low', 3000, 'low'), run('high', 3, 'high')]);
    expect(left.get('high')).toBe(3);
    expect(left.get('low')).toBe(5);
  });

  it('gives nothing without slots, and nothing to a run without demand', () => {
    expect(allocateSlots(0, [run('a', 10)]).get('a')).toBe(0);
    expect(allocateSlots(4, [run('a', 0), run('b', 10)])).toEqual(new Map([['a', 0], ['b', 4]]));
  });
});

describe('shareWindow', () => {
  it('keeps two bundles per slot of the share, at least one command while the share is above zero', () => {
    expect(shareWindow(4, 10)).toBe(80);
    expect(shareWindow(1.5, 1)).toBe(3);
    expect(shareWindow(0.01, 1)).toBe(1);
    expect(shareWindow(0, 50)).toBe(0);
  });
});

describe('shareView', () => {
  it('names the runs holding slots while this one waits', () => {
    const runs = [run('a', 3000, 'normal', 80), run('b', 40, 'high', 8), run('c', 10, 'normal', 0)];
    const view = shareView('c', 8, runs);
    expect(view.share).toBe(0);
    expect(view.waitsBehind.map((other) => other.runId)).toEqual(['a', 'b']);
    // A lower run with no share left is draining, not taking slots from a higher one.
    expect(shareView('b', 8, [...runs.slice(0, 2), run('c', 10, 'normal', 0)]).waitsBehind).toEqual([]);
    expect(shareView('b', 4, [run('a', 3000, 'normal', 80), run('b', 40, 'high', 8), run('h', 40, 'high', 8)]).waitsBehind).toEqual([{ runId: 'h', priority: 'high', share: 2 }]);
  });

  it('waits behind nobody when all its commands are published', () => {
    expect(shareView('a', 8, [run('a', 10, 'normal', 10), run('b', 100, 'normal', 16)]).waitsBehind).toEqual([]);
  });
});

describe('awaited attempts under a window', () => {
  it('opens room again only when a batch can go, never above the window', async () => {
    let window = 6;
    const awaited = createAwaitedAttempts({ maxInFlight: 100, window: () => window, batch: () => 3 });
    const handOver = async (): Promise<number> => {
      let handed = 0;
      while (handed < 20) {
        const room = await Promise.race([awaited.waitForRoom().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20))]);
        if (!room) break;
        void awaited.awaitResult(`c${awaited.count()}-${Math.random()}`, 1);
        handed++;
      }
      return handed;
    };
    expect(await handOver()).toBe(6);
    const ids = (): string[] => awaited.waitingSince(Date.now(), 100);
    const settle = (id: string): void => awaited.settle(id, { result: { outcome: 'succeeded', exitCode: 0, signal: null, durationMs: 1, startedAt: '', finishedAt: '' }, worker: 'w', log: '' } as never);
    settle(ids()[0]!);
    settle(ids()[0]!);
    expect(await handOver()).toBe(0); // 4 awaited: more than window - batch
    settle(ids()[0]!);
    expect(await handOver()).toBe(3); // a whole batch, back up to the window
    window = 0;
    settle(ids()[0]!);
    settle(ids()[0]!);
    expect(await handOver()).toBe(0); // no share: nothing more while it lasts
    window = 8;
    awaited.wake();
    expect(await handOver()).toBe(4);
  });
});

describe('--priority', () => {
  it('is high, normal or low, normal by default, and names the variable it came from when wrong', () => {
    expect(loadRunConfig(['jobs.sh'], {}, {}, '/tmp').priority).toBe('normal');
    expect(loadRunConfig(['jobs.sh'], { priority: 'high' }, {}, '/tmp').priority).toBe('high');
    expect(loadRunConfig(['jobs.sh'], {}, { TASKER_PRIORITY: 'LOW' }, '/tmp').priority).toBe('low');
    expect(() => loadRunConfig(['jobs.sh'], {}, { TASKER_PRIORITY: 'urgent' }, '/tmp')).toThrow(InputError);
    expect(() => loadRunConfig(['jobs.sh'], { priority: 'urgent' }, {}, '/tmp')).toThrow(/--priority must be one of: low, normal, high; got "urgent"/);
  });
});
