// The executor's own floor for bench/distributed.sh (b): LANES bash runners, the ones the tasker
// and the worker start commands with (shared/exec/shell-runner-protocol.ts), each handed its share
// of the jobs file up front, so it reads its next request the moment a command ends. No Node work
// per command, no broker, no Redis: only what a command costs the runner itself (its request, a
// log file of its own, the fork from bash, the start and end replies). Uses the built dist/.
//
//   node bench/runner-floor.mjs LANES JOBS_FILE DIR   # prints "<commands> <seconds>"
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRequest, runnerScript } from '../dist/shared/exec/shell-runner-protocol.js';
import { findShell } from '../dist/shared/exec/shell-lookup.js';

const [lanesText, jobsFile, dir] = process.argv.slice(2);
const lanes = Number(lanesText);
const commands = readFileSync(jobsFile, 'utf8').split('\n').filter((line) => line.trim() !== '');
const shell = findShell(process.env.PATH);
mkdirSync(join(dir, 'logs'), { recursive: true });

let ended = 0;
const startedAt = process.hrtime.bigint();
const done = new Promise((resolve) => {
  for (let lane = 0; lane < lanes; lane++) {
    const runner = spawn(shell, ['-c', runnerScript, 'runner-floor', shell, '0', ''], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
    let pending = '';
    runner.stdout.on('data', (chunk) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop();
      for (const line of lines) if (line.startsWith('E ') && ++ended === commands.length) resolve();
    });
    let requests = '';
    for (let index = lane; index < commands.length; index += lanes) {
      const request = { command: commands[index], cwd: dir, logPath: join(dir, 'logs', `${index}.log`), env: { TASKER_COMMAND_ID: String(index) } };
      requests += encodeRequest(index + 1, request, shell, true);
    }
    runner.stdin.end(requests);
  }
});
await done;
console.log(`${commands.length} ${(Number(process.hrtime.bigint() - startedAt) / 1e9).toFixed(3)}`);
process.exit(0);
