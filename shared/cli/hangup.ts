import { closeSync, fstatSync, openSync } from 'node:fs';

/**
 * A closed terminal (SIGHUP): the program stops as on Ctrl-C, then exits without its terminal.
 * Node before 24 aborts at that exit (its stdio reset asserts when the terminal is gone,
 * nodejs/node#51519), so the standard streams that are terminals are pointed at /dev/null first:
 * Node then leaves them alone. The exit itself is main.ts's.
 */

let hungUp = false;

/** Call on SIGHUP. */
export function noteHangUp(): void {
  hungUp = true;
}

/** After a hang-up, points the terminal's standard streams at /dev/null and says true: exit at once, there is nothing to drain. */
export function releaseClosedTerminal(): boolean {
  if (!hungUp) return false;
  for (const fd of [0, 1, 2]) {
    try {
      if (!fstatSync(fd).isCharacterDevice()) continue;
      closeSync(fd);
      const opened = openSync('/dev/null', fd === 0 ? 'r' : 'w'); // the lowest free descriptor: fd again, unless a lower one was free
      if (opened !== fd) closeSync(opened); // then fd stays closed, which Node skips as well
    } catch {
      // already closed: Node skips it too
    }
  }
  return true;
}
