// The fixed costs of one `tasker run`, for bench/distributed.sh and bench/local.sh: from the
// process's start (measured by the bench) to the first command started, and from the last command's
// end to the process's exit, each split at the run's own start and end (summary.json), and the
// time the start of the run loses to its steady state (the bundle size ramp, runners starting).
//
//   node bench/fixed-costs.mjs RUN_DIR START_NS END_NS
//   -> "toFirstMs tailMs startUpMs runToFirstMs lastToRunEndMs runEndToExitMs rampLossMs Q1 Q2 Q3 Q4"
// Ramp loss: the time to the first quarter of the commands finished, less what the steady rate
// (from the first quarter's end to the third's) would take for them. Q1..Q4: commands/s in each
// quarter of the commands (by end time; the first from the first command's start), the run's shape.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [runDir, startNs, endNs] = process.argv.slice(2);
const startMs = Number(BigInt(startNs) / 1000000n);
const endMs = Number(BigInt(endNs) / 1000000n);
const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
let firstStart = Infinity;
let lastEnd = -Infinity;
const ends = [];
for (const line of readFileSync(join(runDir, 'results.jsonl'), 'utf8').split('\n')) {
  if (line === '') continue;
  const result = JSON.parse(line);
  const started = Date.parse(result.startedAt);
  const finished = Date.parse(result.finishedAt);
  if (started < firstStart) firstStart = started;
  if (finished > lastEnd) lastEnd = finished;
  ends.push(finished);
}
ends.sort((a, b) => a - b);
const quarter = Math.floor(ends.length / 4);
const threeQuarters = Math.floor((3 * ends.length) / 4);
const steadyMsPerCommand = (ends[threeQuarters] - ends[quarter]) / (threeQuarters - quarter);
const rampLoss = ends[quarter] - firstStart - quarter * steadyMsPerCommand;
const bounds = [0, 1, 2, 3, 4].map((q) => Math.min(ends.length - 1, Math.floor((q * ends.length) / 4)));
const quarterRates = [1, 2, 3, 4].map((q) => {
  const from = q === 1 ? firstStart : ends[bounds[q - 1]];
  return ((bounds[q] - (q === 1 ? -1 : bounds[q - 1])) * 1000) / Math.max(1, ends[bounds[q]] - from);
});
const runStart = Date.parse(summary.startedAt);
const runEnd = Date.parse(summary.finishedAt);
const figures = [firstStart - startMs, endMs - lastEnd, runStart - startMs, firstStart - runStart, runEnd - lastEnd, endMs - runEnd, rampLoss, ...quarterRates];
console.log(figures.map((ms) => Math.round(ms)).join(' '));
