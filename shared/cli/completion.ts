import { markerDirName } from '../run-dir/run-layout.js';

/**
 * Shell completion for `tasker` and `worker`, generated from their command-line definitions so it
 * never lists an option that is gone. Pure: the spec in, the script out. zsh runs the bash
 * function through bashcompinit, which ships with zsh.
 */

export const completionShells = ['bash', 'zsh'] as const;
export type CompletionShell = (typeof completionShells)[number];

/** What the value of an option or argument is, for completing it. */
export type ValueKind = 'file' | 'dir' | 'run-id' | 'other';

export interface ValueSpec {
  kind: ValueKind;
  /** The only values it takes, when there is such a list. */
  choices?: readonly string[];
}

export interface OptionSpec {
  /** `--workdir`, `-j`... every spelling. */
  names: string[];
  /** undefined: a switch, takes no value. */
  value: ValueSpec | undefined;
}

export interface CommandSpec {
  name: string;
  options: OptionSpec[];
  /** What its positional arguments are; undefined when it takes none. */
  args: ValueSpec | undefined;
}

export interface ProgramSpec {
  name: string;
  /** The program's own options (and, without subcommands, its only ones). */
  options: OptionSpec[];
  commands: CommandSpec[];
}

/** Every value the program's options and arguments take. */
function valueSpecsOf(program: ProgramSpec): ValueSpec[] {
  const ofOptions = (options: OptionSpec[]): ValueSpec[] => options.flatMap((option) => (option.value === undefined ? [] : [option.value]));
  return [...ofOptions(program.options), ...program.commands.flatMap((command) => [...ofOptions(command.options), ...(command.args === undefined ? [] : [command.args])])];
}

const identifier = (name: string): string => name.replace(/[^A-Za-z0-9_]/g, '_');
const words = (list: readonly string[]): string => list.join(' ');

/** Fills COMPREPLY with the values that fit `cur`. */
function valueAction(value: ValueSpec | undefined): string {
  if (value?.choices !== undefined) return `COMPREPLY=($(compgen -W "${words(value.choices)}" -- "$cur"))`;
  if (value?.kind === 'file') return 'COMPREPLY=($(compgen -f -- "$cur"))';
  if (value?.kind === 'dir') return 'COMPREPLY=($(compgen -d -- "$cur"))';
  if (value?.kind === 'run-id') return 'COMPREPLY=($(compgen -W "$(_tasker_run_ids)" -- "$cur"))';
  return 'COMPREPLY=()';
}

/** `case "$prev" in` branches: what follows an option that takes a value. */
function valueCases(options: readonly OptionSpec[]): string[] {
  return options.filter((option) => option.value !== undefined).map((option) => `      ${option.names.join('|')}) ${valueAction(option.value)}; return ;;`);
}

function commandBranch(command: CommandSpec): string[] {
  const names = command.options.flatMap((option) => option.names);
  return [
    `    ${command.name})`,
    '      case "$prev" in',
    ...valueCases(command.options),
    '      esac',
    `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${words([...names, '--help'])}" -- "$cur")); else ${valueAction(command.args)}; fi`,
    '      ;;',
  ];
}

/** The bash completion function of one program, and its `complete` line. */
export function bashCompletion(program: ProgramSpec): string {
  const fn = `_${identifier(program.name)}_complete`;
  const topNames = words([...program.options.flatMap((option) => option.names), '--help']);
  const lines = [
    `${fn}() {`,
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" sub="" i',
    '  COMPREPLY=()',
  ];
  if (program.commands.length === 0) {
    lines.push('  case "$prev" in', ...valueCases(program.options).map((line) => line.slice(2)), '  esac', `  COMPREPLY=($(compgen -W "${topNames}" -- "$cur"))`);
  } else {
    lines.push(
      '  # The subcommand is the first word that is not an option (the program\'s own options take no value).',
      '  for ((i = 1; i < COMP_CWORD; i++)); do [[ "${COMP_WORDS[i]}" != -* ]] && { sub="${COMP_WORDS[i]}"; break; }; done',
      '  case "$sub" in',
      `    "") COMPREPLY=($(compgen -W "${words([...program.commands.map((command) => command.name), 'help'])} ${topNames}" -- "$cur")) ;;`,
      ...program.commands.flatMap(commandBranch),
      '  esac',
    );
  }
  lines.push('}', `complete -o filenames -F ${fn} ${program.name}`);
  return lines.join('\n');
}

/** Run ids of the workdir the command line names (--workdir), else of $WORKDIR or the current directory. */
const runIdsHelper = [
  '_tasker_run_ids() {',
  '  local dir="${WORKDIR:-.}" i',
  '  for ((i = 1; i < COMP_CWORD; i++)); do [[ "${COMP_WORDS[i]}" == --workdir ]] && dir="${COMP_WORDS[i+1]}"; done',
  `  [[ -d "$dir/${markerDirName}/runs" ]] && (cd "$dir/${markerDirName}/runs" && ls -1)`,
  '}',
];

/** The whole script; `loadWith` is the command that prints it, for its first line. */
export function completionScript(shell: CompletionShell, program: ProgramSpec, loadWith: string): string {
  const usesRunIds = valueSpecsOf(program).some((value) => value.kind === 'run-id');
  const head = [
    `# ${shell} completion for ${program.name}; load it with: source <(${loadWith})`,
    // zsh runs the bash function through bashcompinit, which needs compinit's compdef.
    ...(shell === 'zsh' ? ['(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }', 'autoload -U +X bashcompinit && bashcompinit'] : []),
  ];
  return `${[...head, ...(usesRunIds ? runIdsHelper : []), bashCompletion(program)].join('\n')}\n`;
}
