import { describe, expect, it } from 'vitest';
import { countReasons, diffCommands, type DiffCommand, type PriorStatus } from '../../tasker/jobs/rerun-diff.js';

/** Commands of one file, ids by line as the planner makes them: [phase, text] per line. */
function lines(...entries: [string, string][]): DiffCommand[] {
  // Phases in plan order: a new place wherever the phase name changes.
  let place = 1;
  return entries.map(([phase, command], index) => {
    if (index > 0 && phase !== entries[index - 1]![0]) place++;
    return { id: `f1-L${index + 1}`, phase, phaseIndex: place, command };
  });
}

const allSucceeded = (): PriorStatus => 'succeeded';

/** What runs again, as "reason id" per command. */
function rerun(before: DiffCommand[], after: DiffCommand[], status: (id: string) => PriorStatus = allSucceeded): string[] {
  const diff = diffCommands(before, after, status);
  return diff.rerun.map((entry) => `${entry.reason} ${after[entry.index]!.id}`);
}

const base = lines(['a', 'echo 1'], ['a', 'echo 2'], ['b', 'echo 3'], ['b', 'echo 4']);

describe('diffCommands: what a resumed run runs again', () => {
  it('unchanged and all succeeded: nothing; a failed or unfinished one runs again', () => {
    expect(rerun(base, base)).toEqual([]);
    const status = (id: string): PriorStatus => (id === 'f1-L2' ? 'failed' : id === 'f1-L4' ? 'unfinished' : 'succeeded');
    expect(rerun(base, base, status)).toEqual(['failed f1-L2', 'unfinished f1-L4']);
  });

  it('an inserted line runs, alone in its phase: the lines after it keep their results under their new ids', () => {
    const after = lines(['a', 'echo 1'], ['a', 'echo 2'], ['b', 'echo 0'], ['b', 'echo 3'], ['b', 'echo 4']);
    const diff = diffCommands(base, after, allSucceeded);
    expect(diff.rerun.map((entry) => entry.reason)).toEqual(['new']);
    expect(diff.kept).toBe(4);
    expect(diff.sameAs.map((same) => same?.id)).toEqual(['f1-L1', 'f1-L2', undefined, 'f1-L3', 'f1-L4']);
  });

  it('a change in a phase reruns every later phase whole (they may read its outputs); earlier phases keep theirs', () => {
    const three = lines(['a', 'echo 1'], ['b', 'echo 2'], ['b', 'echo 3'], ['c', 'echo 4']);
    const after = lines(['a', 'echo 1'], ['b', 'echo 2'], ['b', 'echo three'], ['c', 'echo 4']);
    const diff = diffCommands(three, after, allSucceeded);
    expect(rerun(three, after)).toEqual(['changed f1-L3', 'after-change f1-L4']);
    expect(diff.kept).toBe(2);
    // A later phase's command starts afresh: its earlier result is not carried over.
    expect(diff.sameAs.map((same) => same?.id)).toEqual(['f1-L1', 'f1-L2', undefined, undefined]);
    // A failed command, or a deleted one, does not rerun later phases: only an edit does.
    expect(rerun(three, three, (id) => (id === 'f1-L2' ? 'failed' : 'succeeded'))).toEqual(['failed f1-L2']);
    expect(rerun(three, lines(['a', 'echo 1'], ['b', 'echo 2'], ['c', 'echo 4']))).toEqual([]);
  });

  it('a deleted line is no longer part of the run; nothing else runs', () => {
    const after = lines(['a', 'echo 1'], ['b', 'echo 3'], ['b', 'echo 4']);
    const diff = diffCommands(base, after, allSucceeded);
    expect(diff.rerun).toEqual([]);
    expect(diff.deleted.map((command) => command.id)).toEqual(['f1-L2']);
  });

  it('an edited line is changed (paired with what it was); a failed line fixed too', () => {
    const after = lines(['a', 'echo 1'], ['a', 'echo 2'], ['b', 'echo 3'], ['b', 'echo four']);
    const diff = diffCommands(base, after, (id) => (id === 'f1-L4' ? 'failed' : 'succeeded'));
    expect(diff.rerun).toEqual([{ index: 3, reason: 'changed', was: base[3] }]);
    expect(diff.deleted).toEqual([]);
  });

  it('a moved line is the same command: kept', () => {
    const after = lines(['a', 'echo 2'], ['a', 'echo 1'], ['b', 'echo 3'], ['b', 'echo 4']);
    expect(rerun(base, after)).toEqual([]);
  });

  it('duplicated lines are told apart by occurrence: the added copy runs, the others are kept', () => {
    const twice = lines(['a', 'echo x'], ['a', 'echo x']);
    const thrice = lines(['a', 'echo x'], ['a', 'echo x'], ['a', 'echo x']);
    expect(rerun(twice, thrice)).toEqual(['new f1-L3']);
    // Of two copies, the second failed: it runs again, the first is kept.
    expect(rerun(twice, twice, (id) => (id === 'f1-L2' ? 'failed' : 'succeeded'))).toEqual(['failed f1-L2']);
  });

  it('a command moved to another phase is changed (its phase), not kept', () => {
    const after = lines(['a', 'echo 1'], ['b', 'echo 2'], ['b', 'echo 3'], ['b', 'echo 4']);
    const diff = diffCommands(base, after, allSucceeded);
    // It is now in phase b, the last: nothing after it to run again.
    expect(diff.rerun).toEqual([{ index: 1, reason: 'changed', was: base[1] }]);
  });

  it('the cascade goes by the place of a phase, not its name: two files named jobs.sh are two phases', () => {
    const twoFiles = (first: string): DiffCommand[] => [
      { id: 'f1-L1', phase: 'jobs.sh', phaseIndex: 1, command: first },
      { id: 'f2-L1', phase: 'jobs.sh', phaseIndex: 2, command: 'cp out.txt copy.txt' },
    ];
    expect(rerun(twoFiles('echo v1 > out.txt'), twoFiles('echo v2 > out.txt'))).toEqual(['changed f1-L1', 'after-change f2-L1']);
  });

  it('a renamed phase reruns its commands, and the later phases', () => {
    const after = lines(['a', 'echo 1'], ['a', 'echo 2'], ['b2', 'echo 3'], ['b2', 'echo 4']);
    expect(rerun(base, after)).toEqual(['changed f1-L3', 'changed f1-L4']);
    const first = lines(['a2', 'echo 1'], ['a2', 'echo 2'], ['b', 'echo 3'], ['b', 'echo 4']);
    expect(rerun(base, first)).toEqual(['changed f1-L1', 'changed f1-L2', 'after-change f1-L3', 'after-change f1-L4']);
  });

  it('an edit is not paired with a deleted command of another phase: that is a new command', () => {
    const before = lines(['a', 'echo 1'], ['b', 'echo 3']);
    const after = lines(['a', 'echo 1'], ['a', 'echo new']);
    const diff = diffCommands(before, after, allSucceeded);
    expect(diff.rerun.map((entry) => entry.reason)).toEqual(['new']);
    expect(diff.deleted.map((command) => command.id)).toEqual(['f1-L2']);
    expect(countReasons(diff)).toEqual({ changed: 0, new: 1, failed: 0, unfinished: 0, 'after-change': 0 });
  });
});
