import { accessSync, constants } from 'node:fs';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false; // absent or not executable: the caller tries the next candidate
  }
}

/** bash from PATH (or /bin/bash), else sh. */
export function findShell(pathVariable: string | undefined): string {
  const dirs = (pathVariable ?? '').split(':').filter((dir) => dir !== '');
  for (const name of ['bash', 'sh']) {
    for (const dir of [...dirs, '/bin', '/usr/bin']) {
      const candidate = `${dir}/${name}`;
      if (isExecutable(candidate)) return candidate;
    }
  }
  return '/bin/sh';
}
