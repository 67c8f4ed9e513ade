import { describe, expect, it } from 'vitest';
import { JobsFileError } from '../../shared/errors.js';
import { checkShellSyntax, type CommandLine } from '../../tasker/jobs/shell-syntax.js';

/** The syntax check runs the real shell (`bash -n`, which never executes anything). */

function lines(texts: string[]): () => AsyncIterable<CommandLine> {
  return async function* () {
    for (const [index, text] of texts.entries()) yield { line: index + 1, text };
  };
}

async function problem(texts: string[], env: Record<string, string | undefined> = process.env): Promise<JobsFileError | undefined> {
  try {
    await checkShellSyntax('jobs.sh', lines(texts), { env });
    return undefined;
  } catch (error) {
    if (error instanceof JobsFileError) return error;
    throw error;
  }
}

describe('checkShellSyntax', () => {
  it('accepts what bash -c accepts: quotes, lists, compound commands, comments, a here-string', async () => {
    expect(
      await problem([
        'python -m asreview simulate data/x.csv -o out/x.asreview --seed 1',
        'echo "it\'s" && echo \'a "b"\' | tr a b > /dev/null',
        'for i in 1 2; do echo $i; done; if true; then :; fi',
        "echo a # a comment with an unmatched ' quote",
        'cat <<< "here string"',
        '{ echo grouped; }',
        'f() { echo defined; }; f',
        'case x in x) echo;; esac',
      ]),
    ).toBeUndefined();
  });

  it.each([
    ['an unterminated single quote', "echo 'a", /unexpected EOF while looking for matching `''/],
    ['an unterminated double quote', 'echo "a', /unexpected EOF while looking for matching `"'/],
    ['an unclosed command substitution', 'echo $(date', /unexpected EOF|syntax error/],
    ['an if without fi', 'if true; then echo', /syntax error|unexpected end of file/],
    ['a stray closing brace', 'echo a; }', /syntax error near unexpected token `}'/],
    ['a dangling pipe', 'echo a |', /syntax error|unexpected end of file/],
  ])('names the line of %s', async (_name, bad, message) => {
    const error = await problem(['echo first', 'echo "second"', bad, 'echo "after"', "echo 'more'"]);
    expect(error?.line).toBe(3);
    expect(error?.message).toMatch(/^jobs\.sh:3: the shell cannot parse this command \(/);
    expect(error?.message).toMatch(message);
    expect(error?.message).toContain('fix its quoting or brackets');
  });

  it('finds the first bad command among many, whichever comes after it', async () => {
    const texts = Array.from({ length: 2000 }, (_, i) => `echo "line ${i + 1}"`);
    texts[1233] = "echo 'broken";
    texts[1500] = 'echo "also broken';
    const error = await problem(texts);
    expect(error?.line).toBe(1234);
  });

  it('misses two bad lines that parse together (a known limit: both still fail when they run)', async () => {
    // One shell reads all commands: a quote opened on one line and closed on another spans the
    // function boundaries in between. Each command alone would fail; the check cannot see it.
    expect(await problem(['echo ok', "echo 'a", "b'", 'echo fine'])).toBeUndefined();
  });

  it('leaves here-documents alone (the rest of the file would become their body)', async () => {
    expect(await problem(['cat <<EOF', 'echo "after"'])).toBeUndefined();
  });

  it('does not check when BASH_ENV is set: it may turn on syntax such as extglob', async () => {
    expect((await problem(['ls !(x)']))?.message).toMatch(/syntax error/);
    expect(await problem(['ls !(x)'], { ...process.env, BASH_ENV: '/dev/null' })).toBeUndefined();
  });
});
