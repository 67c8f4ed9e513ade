import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createStdout, isClosedStdoutError } from '../../shared/cli/stdout.js';

/** A stream that never drains: the pipe is full and its reader is about to go away. */
function fullPipe(): Writable {
  return new Writable({ highWaterMark: 4, write: () => undefined });
}

function epipe(): Error {
  return Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
}

describe('createStdout', () => {
  it('releases a write waiting for drain when the reader goes away, and writes nothing after', async () => {
    const stream = fullPipe();
    const seen: Error[] = [];
    const stdout = createStdout(stream, (error) => seen.push(error));
    const pending = stdout.write('more than four bytes');
    stream.destroy(epipe());
    await pending;
    expect(stdout.closed).toBe(true);
    expect(seen.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EPIPE']);
    await stdout.write('ignored');
    stdout.writeNow('ignored');
    expect(seen).toHaveLength(1);
  });

  it('tells a closed reader from other stream failures', () => {
    expect(isClosedStdoutError(epipe())).toBe(true);
    expect(isClosedStdoutError(Object.assign(new Error('destroyed'), { code: 'ERR_STREAM_DESTROYED' }))).toBe(true);
    // A terminal that closed (SIGHUP) answers writes with EIO: gone too.
    expect(isClosedStdoutError(Object.assign(new Error('write EIO'), { code: 'EIO' }), true)).toBe(true);
    // EIO on a file (stdout redirected to a failing disk) is a real error.
    expect(isClosedStdoutError(Object.assign(new Error('write EIO'), { code: 'EIO' }))).toBe(false);
    expect(isClosedStdoutError(Object.assign(new Error('write ENOSPC'), { code: 'ENOSPC' }))).toBe(false);
    expect(isClosedStdoutError(undefined)).toBe(false);
  });
});
