// The floor of a worker's own CPU per command, for bench/cpu-split.sh: a Node process that does
// only the I/O each command needs under our guarantees, and nothing else: one bash runner
// (shared/exec/shell-runner-protocol.ts, the request and its replies) and one Redis script call
// (ioredis, as the worker's client is set up) per command, its start recorded before it runs.
// No broker, no lease logic, no result record, no logs. Uses the built dist/.
//
//   node bench/worker-floor.mjs N   # -> "<Node CPU ms> <runner and command CPU ms> <Redis CPU ms>" per command
// (Redis's: from /proc when it runs on this machine, else nan).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { encodeRequest, runnerScript } from '../dist/shared/exec/shell-runner-protocol.js';
import { findShell } from '../dist/shared/exec/shell-lookup.js';

const n = Number(process.argv[2] ?? 2000);
const shell = findShell(process.env.PATH);
const dir = mkdtempSync(join(tmpdir(), 'worker-floor-'));
const key = `worker-floor:${process.pid}`;
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: false });
redis.defineCommand('floorStart', { numberOfKeys: 1, lua: "redis.call('hset', KEYS[1], ARGV[1], ARGV[2]); return redis.call('hincrby', KEYS[1], 'n', 1)" });
await redis.floorStart(key, 'warm', '1');
const runner = spawn(shell, ['-c', runnerScript, 'worker-floor', shell, '0', ''], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
/** A process's CPU and its reaped children's, from /proc, in ms (NaN when it cannot be read). */
const cpuMs = (pid) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return Number.NaN; // Redis on another machine
  }
};
const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
let done = 0;
let partial = '';
const next = () => redis.floorStart(key, String(done), 'started').then(() => runner.stdin.write(encodeRequest(done + 1, { command: 'true', cwd: dir, logPath: join(dir, `${done % 64}.log`), env: {} }, shell, true)));
const finished = new Promise((resolve) => {
  runner.stdout.setEncoding('latin1');
  runner.stdout.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (line.startsWith('E ')) {
        done++;
        if (done === n) resolve();
        else void next();
      }
    }
  });
});
const before = process.cpuUsage();
const runnerBefore = cpuMs(runner.pid);
const redisBefore = cpuMs(redisPid);
await next();
await finished;
const own = process.cpuUsage(before);
const runnerMs = cpuMs(runner.pid) - runnerBefore;
const redisMs = cpuMs(redisPid) - redisBefore;
console.log(`${((own.user + own.system) / 1000 / n).toFixed(3)} ${(runnerMs / n).toFixed(3)} ${(redisMs / n).toFixed(3)}`);
runner.kill();
await redis.del(key);
redis.disconnect();
rmSync(dir, { recursive: true, force: true });
process.exit(0); // the runner's descriptor 3 would keep the loop alive
