import { existsSync } from 'node:fs';
import { parseResultLine } from '../../shared/state/results.js';
import { sizePools, type RunResources } from './pool-sizing.js';
import { forEachLine } from './report-input.js';
import { createResourceTally } from './resource-stats.js';
import type { PhaseSummary } from './summary.js';

/**
 * What a run's commands used, read from its results.jsonl (every session's attempts), and the pool
 * sizes it suggests: for summary.json and the printed summary at the end of a run, and for
 * `tasker report`.
 */

/** `phases`: the run's phases (their pools and where they ran), as summary.json lists them. */
export async function readRunResources(resultsPath: string, phases: readonly Pick<PhaseSummary, 'name' | 'runsOn' | 'pool'>[]): Promise<RunResources> {
  const tally = createResourceTally();
  if (existsSync(resultsPath)) {
    await forEachLine(resultsPath, (line) => {
      const record = parseResultLine(line);
      if (record !== undefined) tally.add(record);
    });
  }
  return sizePools(tally.phases(), phases);
}
