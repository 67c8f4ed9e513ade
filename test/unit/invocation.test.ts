import { describe, expect, it } from 'vitest';
import { describeInvocation, shellWord } from '../../shared/cli/invocation.js';

describe('describeInvocation', () => {
  const facts = { script: '/home/ana/tasker/bin/tasker.js', npmCommand: undefined, cwd: '/home/ana/tasker', onPath: false };

  it('says npx tasker when npx (npm exec) started us', () => {
    expect(describeInvocation({ ...facts, script: '/home/ana/.npm/_npx/ab/node_modules/.bin/tasker', npmCommand: 'exec' })).toBe('npx tasker');
    // A tasker that a program run by npx started in turn: npm_command is inherited, the path tells.
    expect(describeInvocation({ ...facts, npmCommand: 'exec' })).toBe('node bin/tasker.js');
  });

  it('says tasker when tasker on the PATH is this script', () => {
    expect(describeInvocation({ ...facts, script: '/usr/local/bin/tasker', onPath: true })).toBe('tasker');
  });

  it('says node and the script, relative to the current directory when inside it', () => {
    expect(describeInvocation(facts)).toBe('node bin/tasker.js');
    expect(describeInvocation({ ...facts, cwd: '/tmp/work' })).toBe('node /home/ana/tasker/bin/tasker.js');
    expect(describeInvocation({ ...facts, script: '/home/ana/my tasker/bin/tasker.js', cwd: '/tmp' })).toBe("node '/home/ana/my tasker/bin/tasker.js'");
  });

  it('gives an executable link that is not on the PATH as a path', () => {
    expect(describeInvocation({ ...facts, script: '/home/ana/tasker/node_modules/.bin/tasker' })).toBe('node_modules/.bin/tasker');
    expect(describeInvocation({ ...facts, script: '/home/ana/tasker/tasker' })).toBe('./tasker');
  });
});

describe('shellWord', () => {
  it('quotes only what bash would split or expand', () => {
    expect(shellWord('/tmp/work-1')).toBe('/tmp/work-1');
    expect(shellWord('/tmp/my work')).toBe("'/tmp/my work'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
  });
});
