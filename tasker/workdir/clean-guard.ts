import { isAbsolute, relative, sep } from 'node:path';

/** Whether `--clean` may empty a workdir (pure): never /, nor one holding your home, nor a non-empty one that never held a run (without --force-clean). */

/** Facts about a workdir that decide whether `--clean` may empty it. */
export interface CleanFacts {
  /** Real path of the workdir. */
  workdir: string;
  /** Real path of the user's home directory. */
  home: string;
  isEmpty: boolean;
  /** Holds the marker directory of an earlier tasker run. */
  hasMarker: boolean;
  force: boolean;
}

function isSameOrAncestor(ancestor: string, path: string): boolean {
  const rel = relative(ancestor, path);
  // "..users" is a child named "..users", not a way out: only ".." as a whole segment leaves.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Why `--clean` must not empty this workdir, or undefined when it may. Pure. */
export function cleanRefusal(facts: CleanFacts): string | undefined {
  if (facts.workdir === '/' || facts.workdir === '') {
    return '--clean refuses to empty / (choose a dedicated --workdir)';
  }
  if (isSameOrAncestor(facts.workdir, facts.home)) {
    return `--clean refuses to empty ${facts.workdir}: it is or contains your home directory (choose a dedicated --workdir)`;
  }
  if (facts.isEmpty || facts.hasMarker || facts.force) return undefined;
  return `--clean refuses to empty ${facts.workdir}: it is not empty and no tasker run was ever made there (no .tasker directory). Check the path, or add --force-clean if everything in it may be deleted`;
}
