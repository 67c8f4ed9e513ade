import { describe, expect, it } from 'vitest';
import { parseSimpleCommand } from '../../shared/exec/simple-command.js';

describe('parseSimpleCommand', () => {
  it.each([
    ['true', ['true']],
    ['sleep 0.1', ['sleep', '0.1']],
    ['python -m asreview simulate data/x.csv -o out/s_1.asreview --seed 165', ['python', '-m', 'asreview', 'simulate', 'data/x.csv', '-o', 'out/s_1.asreview', '--seed', '165']],
    ['mkdir -p output/simulation/Smid_2020/', ['mkdir', '-p', 'output/simulation/Smid_2020/']],
    ['./bin/run.sh   --opt=value\t--n=2', ['./bin/run.sh', '--opt=value', '--n=2']],
    ['/usr/bin/env A=1 cmd', ['/usr/bin/env', 'A=1', 'cmd']],
    ['cmd a,b c:d e+f user@host 50%', ['cmd', 'a,b', 'c:d', 'e+f', 'user@host', '50%']],
    ['cmd trailing   ', ['cmd', 'trailing']],
  ])('runs %j directly as %j', (command, argv) => {
    expect(parseSimpleCommand(command)).toEqual(argv);
  });

  it.each([
    ['single quotes', "echo 'a b'"],
    ['double quotes', 'python x.py "a b"'],
    ['a variable', 'python $SCRIPT'],
    ['a braced variable', 'cat ${HOME}/x'],
    ['command substitution', 'cat $(ls)'],
    ['backticks', 'cat `ls`'],
    ['a star glob', 'ls *.csv'],
    ['a ? glob', 'ls file?.csv'],
    ['a bracket glob', 'ls file[12].csv'],
    ['brace expansion', 'mkdir {a,b}'],
    ['a tilde', 'ls ~/data'],
    ['output redirection', 'python x.py > out.txt'],
    ['input redirection', 'sort < in.txt'],
    ['a pipe', 'cat x | wc -l'],
    ['a list with ;', 'cd out; make'],
    ['a background &', 'sleep 10 &'],
    ['&&', 'make && make install'],
    ['a comment', 'make # build'],
    ['a hash inside a word', 'make a#b'],
    ['an assignment prefix', 'A=1 cmd'],
    ['a bare assignment', 'A=1'],
    ['a subshell', '(cd x && make)'],
    ['negation', '! grep x file'],
    ['a backslash escape', 'echo a\\ b'],
    ['a leading space', ' ls'],
    ['an empty command', ''],
    ['only blanks', '   '],
  ])('leaves a command with %s to the shell', (_what, command) => {
    expect(parseSimpleCommand(command)).toBeUndefined();
  });

  it.each(['cd out', 'echo hello', 'export A', 'source env.sh', '. env.sh', 'exit 3', 'set -e', 'test -f x', 'printf x', 'pwd', 'kill 1', 'time sleep 1', 'if', 'exec ls', 'ulimit -n 10', 'wait', 'read x', 'eval ls', 'unset A', 'alias x', 'trap x', 'umask 022', ': noop'])(
    'leaves the builtin or keyword in %j to the shell',
    (command) => {
      expect(parseSimpleCommand(command)).toBeUndefined();
    },
  );

  it('rejects a newline (a multi-line command)', () => {
    expect(parseSimpleCommand('ls\nrm -rf x')).toBeUndefined();
  });
});
