import { Option, type Command } from 'commander';
import { commandEnvironment, envValue } from '../../shared/config/config-values.js';
import { ExitCode, InputError } from '../../shared/errors.js';
import { splitPresets, type SplitPreset } from '../jobs/plan.js';
import { assignPools, parsePoolAssignments } from '../jobs/phase-pools.js';
import { formatPlanText, scanAndPlan, writePlanJson } from '../jobs/planning.js';
import { planResume } from './plan-resume.js';

/** `tasker plan`: the phases and commands a run would execute (and on which pool), running nothing. */

export interface PlanFlags {
  split?: string;
  pool?: string[];
  json?: boolean;
  resume?: string;
  workdir?: string;
}

export interface PlanCommandDeps {
  write: (text: string) => Promise<void> | void;
  env: Record<string, string | undefined>;
  cwd: string;
  setExitCode: (code: number) => void;
}

/** A repeatable option; no default, so help does not print "(default: [])". */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export async function planAction(files: string[], flags: PlanFlags, deps: Pick<PlanCommandDeps, 'write' | 'env' | 'cwd'>): Promise<number> {
  const pools = parsePoolAssignments(flags.pool ?? []);
  if (pools.problems.length > 0) throw new InputError('config', pools.problems.join('; '), { problems: pools.problems });
  if (flags.resume !== undefined) return planResume(flags.resume, files, { ...flags, pools: pools.assignments }, deps);
  if (files.length === 0) throw new InputError('config', 'no jobs file given: tasker plan [options] FILE... (or --resume RUN_ID)');
  // --split is checked by the parser (.choices()).
  const plan = await scanAndPlan(files, flags.split as SplitPreset | undefined, commandEnvironment(deps.env));
  plan.phases = assignPools(plan.phases, pools.assignments);
  // As `tasker run` here would run it: with a broker, workers phases go to the workers.
  const distributed = envValue(deps.env, 'AMQP_URL') !== undefined;
  if (flags.json === true) await writePlanJson(plan, deps.write, distributed);
  else await deps.write(await formatPlanText(plan, distributed));
  return ExitCode.ok;
}

export function addPlanCommand(program: Command, deps: PlanCommandDeps): Command {
  return program
    .command('plan')
    .description('Print the phases and commands a run would execute, without running anything.')
    .argument('[files...]', 'jobs files: one phase per file, split further by "# phase:" lines')
    .addOption(new Option('--split <preset>', 'split one file with a preset').choices([...splitPresets]))
    .option('--pool <phase=pool>', 'send the phase PHASE to the workers of pool POOL, over its marker (repeatable)', collect)
    .option('--json', 'print the plan as JSON')
    .option('--resume <id>', 'what resuming that run would run again, and why (with files: as they are now); runs nothing')
    .option('--workdir <dir>', 'with --resume: the run\'s workdir (default: $WORKDIR, else the current directory)')
    .exitOverride()
    .action(async (files: string[], flags: PlanFlags) => {
      deps.setExitCode(await planAction(files, flags, deps));
    });
}
