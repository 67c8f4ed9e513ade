import type { Command, Option } from 'commander';
import type { CommandSpec, OptionSpec, ProgramSpec, ValueSpec } from './completion.js';

/** Reads what completion needs from a commander program: its commands, options and arguments. */

/** How to complete a value, by option (`--workdir`) or argument name (`files`); default: nothing to offer. */
export type ValueHints = Record<string, ValueSpec>;

/** A value's spec: the hint's kind, and commander's choices before the hint's. */
function valueSpec(hint: ValueSpec | undefined, argChoices: readonly string[] | undefined): ValueSpec {
  const choices = argChoices ?? hint?.choices;
  return { kind: hint?.kind ?? 'other', ...(choices === undefined ? {} : { choices }) };
}

function optionSpec(option: Option, hints: ValueHints): OptionSpec {
  const names = [option.short, option.long].filter((name): name is string => name !== undefined);
  if (!option.required && !option.optional) return { names, value: undefined };
  return { names, value: valueSpec(hints[option.long ?? ''], option.argChoices) };
}

function commandSpec(command: Command, hints: ValueHints): CommandSpec {
  const [first] = command.registeredArguments;
  return {
    name: command.name(),
    options: command.options.map((option) => optionSpec(option, hints)),
    args: first === undefined ? undefined : (hints[first.name()] ?? valueSpec(undefined, first.argChoices)),
  };
}

export function programSpec(program: Command, hints: ValueHints): ProgramSpec {
  return {
    name: program.name(),
    options: program.options.map((option) => optionSpec(option, hints)),
    commands: program.commands.map((command) => commandSpec(command, hints)),
  };
}
