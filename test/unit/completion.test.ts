import { Argument, Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { bashCompletion, completionScript } from '../../shared/cli/completion.js';
import { programSpec } from '../../shared/cli/completion-spec.js';

function program(): Command {
  const root = new Command().name('tool').version('1.0.0');
  root.command('go').argument('[files...]').option('-n, --count <n>').option('--dir <dir>').option('--quiet').addOption(new Option('--mode <m>').choices(['a', 'b']));
  root.command('show').addArgument(new Argument('<what>').choices(['x', 'y']));
  return root;
}

describe('programSpec', () => {
  it('reads commands, every spelling of an option, whether it takes a value, choices and hints', () => {
    const spec = programSpec(program(), { files: { kind: 'file' }, '--dir': { kind: 'dir' } });
    expect(spec.options.map((o) => o.names)).toEqual([['-V', '--version']]);
    const [go, show] = spec.commands;
    expect(go).toEqual({
      name: 'go',
      args: { kind: 'file' },
      options: [
        { names: ['-n', '--count'], value: { kind: 'other' } },
        { names: ['--dir'], value: { kind: 'dir' } },
        { names: ['--quiet'], value: undefined },
        { names: ['--mode'], value: { kind: 'other', choices: ['a', 'b'] } },
      ],
    });
    expect(show).toEqual({ name: 'show', args: { kind: 'other', choices: ['x', 'y'] }, options: [] });
  });
});

describe('bashCompletion', () => {
  it('gives each command its options, and each value option what fits after it', () => {
    const script = bashCompletion(programSpec(program(), { files: { kind: 'file' }, '--dir': { kind: 'dir' } }));
    expect(script).toContain('"") COMPREPLY=($(compgen -W "go show help -V --version --help" -- "$cur")) ;;');
    expect(script).toContain('-n|--count) COMPREPLY=(); return ;;');
    expect(script).toContain('--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;');
    expect(script).toContain('--mode) COMPREPLY=($(compgen -W "a b" -- "$cur")); return ;;');
    expect(script).toContain('compgen -W "-n --count --dir --quiet --mode --help"');
    expect(script).not.toContain('--quiet)');
    expect(script.endsWith('complete -o filenames -F _tool_complete tool')).toBe(true);
  });

  it('adds the run-id helper only when something completes run ids, and bashcompinit for zsh', () => {
    const spec = programSpec(program(), {});
    expect(completionScript('bash', spec, 'tool completion bash')).not.toContain('_tasker_run_ids()');
    expect(completionScript('bash', programSpec(program(), { '--dir': { kind: 'run-id' } }), 'x')).toContain('_tasker_run_ids()');
    const zsh = completionScript('zsh', spec, 'tool completion zsh');
    expect(zsh.split('\n')[0]).toBe('# zsh completion for tool; load it with: source <(tool completion zsh)');
    expect(zsh).toContain('autoload -U +X bashcompinit && bashcompinit');
  });
});
