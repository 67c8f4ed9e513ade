import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * A program run in a terminal of its own that then closes, as when a user closes the window or an
 * SSH connection drops: python3's pty module gives it a pseudo-terminal (the program leads the
 * session), and closing the terminal's master side hangs it up, which sends the program SIGHUP.
 */

const script = `
import json, os, pty, select, sys, time
argv, until, timeout = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
output = b''
deadline = time.time() + timeout
def read(wait):
    global output
    ready, _, _ = select.select([fd], [], [], wait)
    if ready:
        try:
            output += os.read(fd, 65536)
        except OSError:
            return False
    return True
while time.time() < deadline and not all(os.path.exists(path) for path in until) and read(0.1):
    pass
os.close(fd)
_, status = os.waitpid(pid, 0)
print(json.dumps({'exitCode': os.waitstatus_to_exitcode(status), 'waited': all(os.path.exists(path) for path in until), 'output': output.decode('utf8', 'replace')}))
`;

export interface HangUp {
  /** The program's exit code (negative: the signal that ended it). */
  exitCode: number;
  /** Whether every file of `until` appeared before the terminal closed (else it closed at the timeout). */
  waited: boolean;
  /** What the program wrote to its terminal before it closed. */
  output: string;
}

/** Runs argv in a terminal, closes the terminal once every file of `until` exists, and waits for the program to end. */
export async function hangUpWhen(argv: string[], until: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<HangUp> {
  const { stdout } = await promisify(execFile)('python3', ['-c', script, JSON.stringify(argv), JSON.stringify(until), String(timeoutMs / 1000)], { env: { ...process.env, ...env, TERM: 'xterm' }, timeout: timeoutMs + 60_000, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as HangUp;
}
