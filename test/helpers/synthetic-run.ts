import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

/**
 * A run directory with a synthetic results.jsonl of any size, shaped like a real distributed run:
 * three phases, many workers, durations spread over three orders of magnitude, some failures
 * retried (most then succeed), a few timeouts and dead letters. For the report's scale test.
 */

export interface SyntheticRun {
  runDir: string;
  attempts: number;
  succeeded: number;
  /** Commands whose last attempt failed. */
  failedCommands: number;
}

const phases = [
  { index: 1, name: 'prepare', runsOn: 'tasker', share: 0.001 },
  { index: 2, name: 'simulate', runsOn: 'workers', share: 0.95 },
  { index: 3, name: 'collect', runsOn: 'workers', share: 0.049 },
];

/** `attempts` result lines (give or take the retries); deterministic. */
export async function writeSyntheticRun(workdir: string, runId: string, commands: number): Promise<SyntheticRun> {
  const runDir = join(workdir, '.tasker', 'runs', runId);
  mkdirSync(runDir, { recursive: true });
  const startMs = Date.parse('2026-11-20T08:00:00.000Z');
  const counts = phases.map((phase) => Math.max(1, Math.round(commands * phase.share)));
  writeFileSync(
    join(runDir, 'run.json'),
    JSON.stringify({ version: 1, runId, createdAt: new Date(startMs).toISOString(), split: null, files: [{ path: 'jobs.sh', sha256: '0', copy: 'jobs/1-jobs.sh' }], phases: phases.map((phase, i) => ({ index: phase.index, name: phase.name, runsOn: phase.runsOn, commandCount: counts[i], firstLine: 1 })) }),
  );
  const out = createWriteStream(join(runDir, 'results.jsonl'));
  const result: SyntheticRun = { runDir, attempts: 0, succeeded: 0, failedCommands: 0 };
  const workers = 200;
  const slots = 8;
  // Each worker slot runs its commands back to back; phases follow each other (a barrier between).
  let phaseStart = startMs;
  let line = 0;
  let chunk = '';
  for (const [p, phase] of phases.entries()) {
    const lanes = phase.runsOn === 'tasker' ? 1 : workers * slots;
    const laneEnd = new Float64Array(lanes).fill(phaseStart);
    for (let n = 0; n < counts[p]!; n++) {
      line++;
      const id = `p${phase.index}-l${line}`;
      const lane = n % lanes;
      const worker = phase.runsOn === 'tasker' ? 'tasker@host' : `worker-${Math.floor(lane / slots)}`;
      const base = 200 + ((n * 7919) % 1000) * (n % 97 === 0 ? 40 : 3);
      const fails = n % 50 === 0 ? (n % 150 === 0 ? 2 : 1) : 0;
      for (let attempt = 1; attempt <= fails + 1; attempt++) {
        const ok = attempt > fails;
        const final = attempt === fails + 1;
        const failedForGood = final && n % 450 === 0;
        const outcome = failedForGood ? (n % 900 === 0 ? 'timed-out' : 'failed') : ok ? 'succeeded' : 'failed';
        const durationMs = outcome === 'timed-out' ? 60_000 : base;
        const started = laneEnd[lane]!;
        const finished = started + durationMs;
        laneEnd[lane] = finished + 5;
        const record = {
          id,
          phase: phase.name,
          phaseIndex: phase.index,
          command: `bash bin/simulate.sh --seed ${n} --config conf/${phase.name}.yml --out results/${phase.name}/${n}.dat`,
          file: 'jobs.sh',
          line,
          attempt,
          outcome,
          exitCode: outcome === 'succeeded' ? 0 : outcome === 'failed' ? 3 : null,
          signal: outcome === 'timed-out' ? 'SIGTERM' : null,
          startedAt: new Date(started).toISOString(),
          finishedAt: new Date(finished).toISOString(),
          durationMs,
          worker,
          log: `.tasker/runs/${runId}/logs/0${phase.index}-${phase.name}/${id}.${attempt}.log`,
          ...(outcome === 'succeeded' ? {} : { reason: outcome === 'timed-out' ? 'timed out after 60s' : 'exit code 3', tail: `simulate: seed ${n}: diverged at step 4711\n` }),
          // A field this report does not know (bundles may add one): it must be ignored.
          ...(n % 10 === 0 ? { bundle: `b${Math.floor(n / 10)}` } : {}),
        };
        chunk += `${JSON.stringify(record)}\n`;
        result.attempts++;
        if (outcome === 'succeeded') result.succeeded++;
        if (final && outcome !== 'succeeded') result.failedCommands++;
        if (chunk.length > 1 << 20) {
          if (!out.write(chunk)) await once(out, 'drain');
          chunk = '';
        }
      }
    }
    phaseStart = Math.max(...laneEnd) + 1000;
  }
  out.end(chunk);
  await once(out, 'finish');
  return result;
}
