import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { taskerEnvironment } from '../../tasker/environment.js';
import { workerEnvironment } from '../../worker/config.js';

/** The README's table of environment variables documents every variable the code reads. */

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const table = readme.slice(readme.indexOf('## Environment variables'), readme.indexOf('\n## ', readme.indexOf('## Environment variables') + 5));

describe('README environment table', () => {
  it('has a row for every variable the tasker and the worker read', () => {
    const names = new Set([...Object.keys(taskerEnvironment), ...Object.keys(workerEnvironment)]);
    const missing = [...names].filter((name) => !table.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
