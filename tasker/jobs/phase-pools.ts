import { InputError } from '../../shared/errors.js';
import { defaultPool, isValidPoolName, poolNameRule } from '../../shared/config/names.js';
import type { PhaseSpec } from './plan.js';

/**
 * Worker pools of a plan (pure): which pool each workers phase sends its commands to. A phase's
 * marker may name one (`# phase: NAME (pool: POOL)`); --pool PHASE=POOL sets or overrides it, so
 * a preset's phases (`--split makita`) can go to a pool too.
 */

/** `--pool PHASE=POOL`, parsed: which phase goes to which pool. */
export interface PoolAssignment {
  phase: string;
  pool: string;
}

/** Parses the values of --pool; every problem is returned, for the configuration's one report. */
export function parsePoolAssignments(values: readonly string[]): { assignments: PoolAssignment[]; problems: string[] } {
  const assignments: PoolAssignment[] = [];
  const problems: string[] = [];
  for (const value of values) {
    const at = value.lastIndexOf('=');
    const phase = value.slice(0, at).trim();
    const pool = value.slice(at + 1).trim();
    if (at < 0 || phase === '') problems.push(`--pool takes PHASE=POOL (e.g. --pool simulate=highmem), got "${value}"`);
    else if (!isValidPoolName(pool)) problems.push(`--pool ${value}: a pool name is ${poolNameRule}, got "${pool}"`);
    else assignments.push({ phase, pool });
  }
  return { assignments, problems };
}

/**
 * Applies --pool to the planned phases (it wins over a marker's pool). Every phase of that name
 * takes the pool; naming no phase, or only phases the tasker runs, is an input error.
 */
export function assignPools(phases: readonly PhaseSpec[], assignments: readonly PoolAssignment[]): PhaseSpec[] {
  for (const { phase, pool } of assignments) {
    const named = phases.filter((spec) => spec.name === phase);
    if (named.length === 0) {
      throw new InputError('plan', `--pool ${phase}=${pool}: the plan has no phase "${phase}" (its phases: ${phases.map((spec) => spec.name).join(', ')})`);
    }
    if (named.every((spec) => spec.runsOn === 'tasker')) {
      throw new InputError('plan', `--pool ${phase}=${pool}: phase "${phase}" is run by the tasker itself; only workers phases go to a pool`);
    }
  }
  return phases.map((spec) => {
    const assigned = assignments.filter((entry) => entry.phase === spec.name && spec.runsOn === 'workers').at(-1);
    return { ...spec, pool: assigned?.pool ?? spec.pool };
  });
}

/** The pools the workers phases of a plan send commands to, in order of first use. */
export function poolsOf(phases: readonly PhaseSpec[]): string[] {
  return [...new Set(phases.filter((phase) => phase.runsOn === 'workers').map((phase) => phase.pool))];
}

/** A run.json written before pools has phases without one: they ran on the default pool. */
export function withDefaultPools(phases: readonly PhaseSpec[]): PhaseSpec[] {
  return phases.map((phase) => ({ ...phase, pool: (phase as Partial<PhaseSpec>).pool ?? defaultPool }));
}
