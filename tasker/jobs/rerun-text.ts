import { counted } from '../report/summary-text.js';
import { countReasons, type DiffCommand, type RerunDiff, type RerunReason } from './rerun-diff.js';

/** `tasker plan --resume`: what a resumed run would run again and why, as text or JSON. Pure. */

/** The diff and the commands of the plan that would run (same order as `diff.sameAs`). */
export interface RerunView {
  runId: string;
  edited: boolean;
  diff: RerunDiff;
  after: readonly (DiffCommand & { file: string; line: number })[];
}

const clip = (text: string): string => (text.length > 100 ? `${text.slice(0, 100)}…` : text);

export function formatRerunText(view: RerunView, shown = 50): string {
  const { diff } = view;
  const counts = countReasons(diff);
  const reasons = (Object.keys(counts) as RerunReason[]).filter((reason) => counts[reason] > 0).map((reason) => `${counts[reason]} ${reason}`);
  const how = view.edited ? 'with the jobs files as they are now (edited since the run started)' : 'as it is (its jobs files unchanged)';
  const out = [`Resuming run ${view.runId} ${how}:`];
  out.push(`  ${counted(diff.rerun.length, 'command')} run again${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}; ${diff.kept} kept (succeeded, unchanged)`);
  if (diff.deleted.length > 0) out.push(`  ${counted(diff.deleted.length, 'command')} no longer in the files: their results stay in the record, not counted`);
  if (diff.rerun.length === 0) return `${out.join('\n')}\n  nothing runs again\n`;
  out.push('', `  ${'reason'.padEnd(12)}  ${'id'.padEnd(10)}  ${'phase'.padEnd(12)}  command`);
  for (const entry of diff.rerun.slice(0, shown)) {
    const command = view.after[entry.index]!;
    out.push(`  ${entry.reason.padEnd(12)}  ${command.id.padEnd(10)}  ${command.phase.padEnd(12)}  ${clip(command.command)}`);
    if (entry.was !== undefined) out.push(`  ${''.padEnd(12)}  ${''.padEnd(10)}  ${''.padEnd(12)}  was: ${wasText(entry.was, command)}`);
  }
  if (diff.rerun.length > shown) out.push(`  … ${diff.rerun.length - shown} more`);
  return `${out.join('\n')}\n`;
}

/** What a changed command was: its text, or its phase when only that changed. */
function wasText(was: DiffCommand, now: DiffCommand): string {
  return was.command === now.command ? `in phase ${was.phase}` : `${clip(was.command)}${was.phase === now.phase ? '' : ` (phase ${was.phase})`}`;
}

export function rerunJson(view: RerunView): string {
  const { diff } = view;
  const rerun = diff.rerun.map((entry) => {
    const command = view.after[entry.index]!;
    return { id: command.id, file: command.file, line: command.line, phase: command.phase, reason: entry.reason, command: command.command, ...(entry.was === undefined ? {} : { was: { phase: entry.was.phase, command: entry.was.command } }) };
  });
  return `${JSON.stringify({ runId: view.runId, edited: view.edited, counts: countReasons(diff), kept: diff.kept, deleted: diff.deleted.length, rerun })}\n`;
}
