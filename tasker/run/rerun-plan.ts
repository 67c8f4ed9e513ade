import { dirname, basename, join } from 'node:path';
import type { RunLayout } from '../../shared/run-dir/run-layout.js';
import { commandsOf, type Plan } from '../jobs/planning.js';
import { diffCommands, type PriorStatus, type RerunDiff } from '../jobs/rerun-diff.js';
import { runRecordBytes, type RunRecord } from '../run-state/run-record.js';
import type { RerunCommand, Revision } from '../run-state/run-revision.js';

export type { RerunCommand, Revision } from '../run-state/run-revision.js';

/**
 * What a resumed run runs again: its commands as recorded and as the given jobs files have them
 * now, compared by content (rerun-diff.ts); and, when the files were edited, the run's next
 * revision: the run.json to write and how the results of unchanged commands carry over.
 */

export interface RerunComparison {
  diff: RerunDiff;
  /** The commands of the plan that runs (the edited files', else the run's own). */
  after: RerunCommand[];
  /** Whether the given files differ from the run's (a new revision). */
  edited: boolean;
}

/** Every command of a plan, in plan order (held in memory: an edited resume compares two whole plans). */
async function readCommands(plan: Plan): Promise<RerunCommand[]> {
  const commands: RerunCommand[] = [];
  for (const phase of plan.phases) {
    for await (const command of commandsOf(plan, phase)) commands.push({ ...command, phase: phase.name, phaseIndex: phase.index });
  }
  return commands;
}

/** `before`: the run's plan from its records; `after`: the plan of the edited files (undefined: not edited). */
export async function comparePlans(before: Plan, after: Plan | undefined, statuses: ReadonlyMap<string, PriorStatus>): Promise<RerunComparison> {
  const earlier = await readCommands(before);
  const now = after === undefined ? earlier : await readCommands(after);
  const diff = diffCommands(earlier, now, (id) => statuses.get(id) ?? 'unfinished');
  return { diff, after: now, edited: after !== undefined };
}

/** The copy of file `index` in revision `number`: the first revision's name, prefixed `rN-`. */
export function revisionCopyPath(layout: RunLayout, number: number, index: number, path: string): string {
  const first = layout.jobsCopyPath(index, path);
  return join(dirname(first), `r${number}-${basename(first)}`);
}

/** The next revision of a run whose jobs files were edited: its run.json (not written yet) and what carries over. */
export function buildRevision(layout: RunLayout, previous: { record: RunRecord; sha256: string }, after: Plan, comparison: RerunComparison, now: Date): Revision {
  const before = previous.record;
  const number = (before.revision ?? 1) + 1;
  const files = after.sources.map((source, index) => ({
    path: source.displayPath,
    sha256: source.sha256,
    copy: revisionCopyPath(layout, number, index, source.displayPath).slice(layout.runDir.length + 1),
  }));
  const earlier = [...(before.earlier ?? []), { revision: before.revision ?? 1, files: before.files, replacedAt: now.toISOString() }];
  const record: RunRecord = { ...before, files, phases: after.phases, revision: number, earlier };
  const carry = new Map<string, RerunCommand>();
  for (const [index, same] of comparison.diff.sameAs.entries()) if (same !== undefined) carry.set(same.id, comparison.after[index]!);
  const rerunIds = comparison.diff.rerun.map((entry) => comparison.after[entry.index]!.id);
  return { number, record, ...runRecordBytes(record), previousSha256: previous.sha256, carry, rerunIds };
}
