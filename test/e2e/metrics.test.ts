import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runTasker, tempDir } from '../helpers/cli.js';
import { freePort } from '../helpers/distributed.js';

/**
 * The tasker's health and metrics server (METRICS_PORT), seen from a command of its own run: a
 * tasker phase reads /metrics while the run goes on. (The workers' are checked in kubernetes.test.ts.)
 */

let dir: { path: string; cleanup: () => void };
beforeEach(() => {
  dir = tempDir('tasker-metrics-');
});
afterEach(() => dir.cleanup());

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('tasker metrics', () => {
  it('serves /livez, /healthz and /metrics while the run lasts, counting its commands, and closes the port at the end', async () => {
    const port = await freePort();
    const fetchTo = (path: string, file: string): string =>
      `node -e "fetch('http://127.0.0.1:${port}${path}').then(async (r) => require('fs').writeFileSync('${file}', r.status + '\\n' + (await r.text())))"`;
    const jobs = join(dir.path, 'jobs.sh');
    writeFileSync(
      jobs,
      ['# phase: work', 'true', 'true', 'false', '# phase: check (tasker)', fetchTo('/metrics', 'metrics.txt'), fetchTo('/healthz', 'healthz.txt'), fetchTo('/livez', 'livez.txt'), ''].join('\n'),
    );
    const result = await runTasker(['run', '--workdir', dir.path, '--keep-going', '-j', '2', jobs], { env: { METRICS_PORT: String(port), PATH: process.env['PATH'] } });
    expect(result.exitCode, result.stderr).toBe(1); // `false` failed; --keep-going ran the check phase
    const [status, ...body] = readFileSync(join(dir.path, 'metrics.txt'), 'utf8').split('\n');
    expect(status).toBe('200');
    const metrics = body.join('\n');
    expect(sample(metrics, 'tasker_commands_total{outcome="succeeded"}')).toBe(2);
    expect(sample(metrics, 'tasker_commands_total{outcome="failed"}')).toBe(1);
    expect(sample(metrics, 'tasker_command_duration_seconds_count{outcome="succeeded"}')).toBe(2);
    expect(sample(metrics, 'tasker_commands_in_flight')).toBe(1); // the command reading it
    expect(readFileSync(join(dir.path, 'healthz.txt'), 'utf8')).toBe('200\nok: running\n');
    expect(readFileSync(join(dir.path, 'livez.txt'), 'utf8')).toBe('200\nok\n');
    expect(result.stderr).toContain('metrics server listening');
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
  });

  it('refuses a port in use before anything runs (exit 2)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const jobs = join(dir.path, 'jobs.sh');
      writeFileSync(jobs, 'touch ran.txt\n');
      const result = await runTasker(['run', '--workdir', dir.path, '--metrics-port', String(port), jobs]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`tasker: metrics port ${port} is already in use`);
      expect(() => readFileSync(join(dir.path, 'ran.txt'))).toThrow();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
