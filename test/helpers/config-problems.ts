import { expect } from 'vitest';
import { InputError } from '../../shared/errors.js';

/** The problems a configuration load refuses with (a usage error, exit 2); fails the test when it loads. */
export function problemsOf(load: () => unknown): readonly string[] {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(2);
    return (error as InputError).problems;
  }
  throw new Error('expected the configuration to be refused');
}
