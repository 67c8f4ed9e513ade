/**
 * Standard output whose reader may go away (`tasker plan --json FILE | head`). Like other Unix
 * tools we then stop writing quietly: no stack trace, no "error". Node ignores SIGPIPE, so without
 * an 'error' listener the EPIPE of the next write is an unhandled error event that kills us.
 */

export interface Stdout {
  /** Writes and waits for the pipe to drain; resolves at once (writing nothing) once the reader is gone. */
  write(chunk: string): Promise<void>;
  /** Writes without waiting; nothing once the reader is gone. */
  writeNow(chunk: string): void;
  /** true once a write failed: the reader went away (EPIPE) or the stream broke. */
  readonly closed: boolean;
}

/**
 * A closed stdout is EPIPE (the reader exited), a stream already destroyed, or — when stdout is a
 * terminal (`terminal`) — EIO: the terminal closed. EIO on a file is a disk error, not a reader gone.
 */
export function isClosedStdoutError(error: unknown, terminal = false): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || (terminal && code === 'EIO');
}

/**
 * Wraps `stream` and installs its 'error' listener. `onClosed` is called once, with the error, the
 * first time the stream fails: the caller decides whether that ends the program (a plan nobody
 * reads) or not (a run whose state is on disk must still finish and exit with its own code).
 */
export function createStdout(stream: NodeJS.WritableStream, onClosed: (error: Error) => void): Stdout {
  let closed = false;
  const waiting = new Set<() => void>();
  stream.on('error', (error: Error) => {
    if (closed) return;
    closed = true;
    for (const resolve of waiting) resolve();
    waiting.clear();
    onClosed(error);
  });
  const writeNow = (chunk: string): boolean => (closed ? true : stream.write(chunk));
  return {
    get closed() {
      return closed;
    },
    writeNow(chunk) {
      writeNow(chunk);
    },
    async write(chunk) {
      if (writeNow(chunk) || closed) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          waiting.delete(done);
          stream.off('drain', done);
          resolve();
        };
        waiting.add(done);
        stream.once('drain', done);
      });
    },
  };
}
