import { closeSync, fstatSync, openSync } from 'node:fs';

/**
 * A closed terminal (SIGHUP): the program stops as on Ctrl-C, then exits without its terminal.
 * Node before 24 aborts at that exit (its stdio reset asserts when the terminal is gone,
 * nodejs/node#51519), so the standard streams that are terminals are pointed at /dev/null first:
 * Node then leaves them alone.
 */

let hungUp = false;

/** Call on SIGHUP. */
export function noteHangUp(): void {
  hungUp = true;
}

/** Exits with `code`: at once after a hang-up, else once stdout drained (a piped summary is not cut short). */
export function exitAfter(code: number, stdoutClosed: boolean): void {
  if (hungUp) {
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
    process.exit(code);
  }
  if (stdoutClosed) process.exit(code);
  process.stdout.write('', () => process.exit(code));
}
