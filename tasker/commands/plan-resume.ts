import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandEnvironment } from '../../shared/config/config-values.js';
import { ExitCode, InputError } from '../../shared/errors.js';
import { isValidRunId, runLayout } from '../../shared/run-dir/run-layout.js';
import { workdirFrom } from '../config.js';
import type { PoolAssignment } from '../jobs/phase-pools.js';
import type { SplitPreset } from '../jobs/plan.js';
import { formatRerunText, rerunJson } from '../jobs/rerun-text.js';
import { createScratchDir, removeScratchDir } from '../jobs/scratch-dirs.js';
import { loadResume, missingRunError } from '../run/resume-run.js';
import { runRecordPath } from '../run-state/run-record.js';

/** `tasker plan --resume ID [FILE...]`: what resuming the run would run again, and why; runs and changes nothing. */

interface PlanResumeFlags {
  split?: string;
  pools: PoolAssignment[];
  json?: boolean;
  workdir?: string;
}

interface PlanResumeDeps {
  write: (text: string) => Promise<void> | void;
  env: Record<string, string | undefined>;
  cwd: string;
}

export async function planResume(runId: string, files: string[], flags: PlanResumeFlags, deps: PlanResumeDeps): Promise<number> {
  if (!isValidRunId(runId)) throw new InputError('config', `--resume "${runId}" is not a valid run id`);
  const workdir = resolve(deps.cwd, workdirFrom(flags.workdir, deps.env, deps.cwd));
  const layout = runLayout(workdir, runId);
  if (!existsSync(runRecordPath(layout))) throw await missingRunError(workdir, runId);
  const scratch = await createScratchDir('tasker-plan-');
  try {
    const request = { files, split: flags.split as SplitPreset | undefined, pools: flags.pools, commandEnv: commandEnvironment(deps.env), compareAlways: true };
    const { comparison } = await loadResume(layout, request, scratch);
    const view = { runId, edited: comparison!.edited, diff: comparison!.diff, after: comparison!.after };
    await deps.write(flags.json === true ? rerunJson(view) : formatRerunText(view));
    return ExitCode.ok;
  } finally {
    await removeScratchDir(scratch);
  }
}
