import { existsSync } from 'node:fs';
import { parseResultLine } from '../../shared/state/results.js';
import { sizePool, type PoolSizing } from './pool-sizing.js';
import { forEachLine } from './report-input.js';
import { createResourceTally, type PhaseResources } from './resource-stats.js';
import type { PhaseSummary } from './summary.js';

/**
 * What a run's commands used, read from its results.jsonl (every session's attempts), and the pool
 * sizes it suggests: for summary.json and the printed summary at the end of a run, and for
 * `tasker report`.
 */

export interface RunResources {
  phases: PhaseResources[];
  sizing: PoolSizing[];
}

/** `phases`: the run's phases (their pools and where they ran), as summary.json lists them. */
export async function readRunResources(resultsPath: string, phases: readonly Pick<PhaseSummary, 'name' | 'runsOn' | 'pool'>[]): Promise<RunResources> {
  const tally = createResourceTally();
  if (existsSync(resultsPath)) {
    await forEachLine(resultsPath, (line) => {
      const record = parseResultLine(line);
      if (record !== undefined) tally.add(record);
    });
  }
  return resourcesOf(tally.phases(), phases);
}

/** The sizes of the workers phases measured, in the phases' order. */
export function resourcesOf(measured: PhaseResources[], phases: readonly Pick<PhaseSummary, 'name' | 'runsOn' | 'pool'>[]): RunResources {
  const sizing: PoolSizing[] = [];
  for (const phase of phases) {
    const resources = measured.find((entry) => entry.phase === phase.name);
    if (phase.runsOn !== 'workers' || resources === undefined) continue;
    const size = sizePool(resources, phase.pool ?? 'default');
    if (size !== undefined) sizing.push(size);
  }
  return { phases: measured, sizing };
}
