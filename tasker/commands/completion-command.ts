import { Argument, type Command } from 'commander';
import { completionScript, completionShells, type CompletionShell } from '../../shared/cli/completion.js';
import { programSpec, type ValueHints } from '../../shared/cli/completion-spec.js';
import { logLevels } from '../../shared/config/config-values.js';
import { ExitCode } from '../../shared/errors.js';
import { haltModes } from '../dispatch/phase-ports.js';
import { splitPresets } from '../jobs/plan.js';

/** `tasker completion bash|zsh`: the completion script of tasker, from its own definitions. */

const hints: ValueHints = {
  files: { kind: 'file' },
  'run-id': { kind: 'run-id' },
  '--workdir': { kind: 'dir' },
  '--stage': { kind: 'file' },
  '--out': { kind: 'file' },
  '--resume': { kind: 'run-id' },
  '--run-id': { kind: 'run-id' },
  '--split': { kind: 'other', choices: splitPresets },
  '--halt': { kind: 'other', choices: haltModes },
  '--log-level': { kind: 'other', choices: logLevels },
};

export function addCompletionCommand(program: Command, write: (text: string) => Promise<void>, setExitCode: (code: number) => void): Command {
  return program
    .command('completion')
    .description('Print the shell completion script of tasker: source <(tasker completion bash), in ~/.bashrc or ~/.zshrc.')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(completionShells))
    .exitOverride()
    .action(async (shell: CompletionShell) => {
      await write(completionScript(shell, programSpec(program, hints), `tasker completion ${shell}`));
      setExitCode(ExitCode.ok);
    });
}
