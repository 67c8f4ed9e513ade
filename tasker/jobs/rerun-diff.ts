/**
 * What a resumed run runs again, pure: its commands before and after the jobs files were edited,
 * matched by content (phase name, command text, and which occurrence of that pair), never by line,
 * so an inserted, deleted or moved line changes nothing for the others.
 */

/** A command as the diff sees it: its id in its own revision of the files, its phase's name, its text. */
export interface DiffCommand {
  id: string;
  phase: string;
  command: string;
  /** The phase's place in the plan (names may repeat: two files `a/jobs.sh`, `b/jobs.sh`). */
  phaseIndex: number;
}

/** How a command ended in the run so far: `unfinished` when it has no result, or was interrupted. */
export type PriorStatus = 'succeeded' | 'failed' | 'unfinished';

/**
 * Why a command runs again. `changed`: its line's text or phase changed; `new`: no command of the
 * earlier files took its place; `after-change`: unchanged and succeeded, but in a phase after one
 * with a changed or new command, whose outputs it may read.
 */
export type RerunReason = 'changed' | 'new' | 'failed' | 'unfinished' | 'after-change';

export interface RerunEntry {
  /** Position in the new commands. */
  index: number;
  reason: RerunReason;
  /** For `changed`: the earlier command it replaces (its text or phase differ). */
  was?: DiffCommand;
}

export interface RerunDiff {
  /** Per new command (same order): the earlier command it is, when its content is unchanged. */
  sameAs: (DiffCommand | undefined)[];
  /** The new commands that run again, in order, with why. */
  rerun: RerunEntry[];
  /** Unchanged commands that succeeded: not run again. */
  kept: number;
  /** Earlier commands no longer in the files (nor replaced by a changed one): their results stay in the record but count no more. */
  deleted: DiffCommand[];
}

const contentKey = (command: DiffCommand): string => `${command.phase}\u0000${command.command}`;

/** For each new command, the index of the earlier command with the same content and occurrence; undefined when none. */
function matchByContent(before: readonly DiffCommand[], after: readonly DiffCommand[]): (number | undefined)[] {
  const earlier = new Map<string, number[]>();
  for (const [index, command] of before.entries()) {
    const key = contentKey(command);
    const list = earlier.get(key);
    if (list === undefined) earlier.set(key, [index]);
    else list.push(index);
  }
  const taken = new Map<string, number>();
  return after.map((command) => {
    const key = contentKey(command);
    const occurrence = taken.get(key) ?? 0;
    taken.set(key, occurrence + 1);
    return earlier.get(key)?.[occurrence];
  });
}

/**
 * Pairs the unmatched new commands with the unmatched earlier ones lying between the same
 * matched neighbours, in order: an edited line is a `changed` command, not a deletion plus a
 * `new` one. Returns new index → earlier index.
 */
function pairEdited(before: readonly DiffCommand[], after: readonly DiffCommand[], matches: readonly (number | undefined)[]): Map<number, number> {
  const unmatchedBefore = new Array<boolean>(before.length).fill(true);
  for (const match of matches) if (match !== undefined) unmatchedBefore[match] = false;
  // Only a command of the same phase, or the same text moved to another phase, is the one edited.
  const replaces = (old: number, now: number): boolean => unmatchedBefore[old] === true && (before[old]!.phase === after[now]!.phase || before[old]!.command === after[now]!.command);
  const pairs = new Map<number, number>();
  let low = -1;
  let gap: number[] = [];
  const flush = (high: number): void => {
    let candidate = low + 1;
    for (const newIndex of gap) {
      let found = candidate;
      while (found < high && !replaces(found, newIndex)) found++;
      if (found >= high) continue;
      pairs.set(newIndex, found);
      unmatchedBefore[found] = false;
      candidate = found + 1;
    }
    gap = [];
  };
  for (const [index, match] of matches.entries()) {
    if (match === undefined) {
      gap.push(index);
      continue;
    }
    flush(match);
    low = Math.max(low, match);
  }
  flush(before.length);
  return pairs;
}

/**
 * `before`: the commands of the run's files as they were, with `status` of each earlier id;
 * `after`: the commands of the files now, in plan order (phase by phase). Unchanged commands that
 * succeeded are kept; the rest runs again: failed, unfinished (no result, or interrupted),
 * changed, new, and every command of the phases after the first one with a changed or new command
 * (`after-change`: a later phase reads what earlier ones wrote, as its barrier says). Those start
 * afresh: their earlier results are not carried over (`sameAs` undefined).
 */
export function diffCommands(before: readonly DiffCommand[], after: readonly DiffCommand[], status: (id: string) => PriorStatus): RerunDiff {
  const matches = matchByContent(before, after);
  const pairs = pairEdited(before, after, matches);
  const diff: RerunDiff = { sameAs: [], rerun: [], kept: 0, deleted: [] };
  const used = new Set<number>();
  // The first phase with a changed or new command, by its place in the plan (names may repeat).
  let changedPhase: number | undefined;
  for (const [index, match] of matches.entries()) {
    if (match === undefined) {
      const paired = pairs.get(index);
      if (paired !== undefined) used.add(paired);
      diff.sameAs.push(undefined);
      diff.rerun.push(paired === undefined ? { index, reason: 'new' } : { index, reason: 'changed', was: before[paired]! });
      changedPhase ??= after[index]!.phaseIndex;
      continue;
    }
    used.add(match);
    const earlier = before[match]!;
    const prior = status(earlier.id);
    if (prior === 'succeeded' && changedPhase !== undefined && after[index]!.phaseIndex > changedPhase) {
      diff.sameAs.push(undefined);
      diff.rerun.push({ index, reason: 'after-change' });
      continue;
    }
    diff.sameAs.push(earlier);
    if (prior === 'succeeded') diff.kept++;
    else diff.rerun.push({ index, reason: prior });
  }
  diff.deleted = before.filter((_, index) => !used.has(index));
  return diff;
}

/** How many run again for each reason. */
export function countReasons(diff: Pick<RerunDiff, 'rerun'>): Record<RerunReason, number> {
  const counts: Record<RerunReason, number> = { changed: 0, new: 0, failed: 0, unfinished: 0, 'after-change': 0 };
  for (const entry of diff.rerun) counts[entry.reason]++;
  return counts;
}
