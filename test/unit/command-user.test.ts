import { describe, expect, it } from 'vitest';
import { collectProblems, readCommandUser, secretsHeld } from '../../shared/config/config-values.js';
import { redactedArgv } from '../../shared/config/urls.js';
import { InputError } from '../../shared/errors.js';
import { commandUserEnvironment, resolveCommandUser } from '../../shared/exec/command-user.js';
import { loadRunConfig } from '../../tasker/config.js';
import { loadWorkerConfig } from '../../worker/config.js';

/** TASKER_COMMAND_USER and WORKER_COMMAND_USER: parsing (pure), resolving, and what is said about secrets. */

function parse(text: string | undefined): ReturnType<typeof readCommandUser> | string[] {
  const problems = collectProblems();
  const spec = readCommandUser('WORKER_COMMAND_USER', { WORKER_COMMAND_USER: text }, problems);
  try {
    problems.done();
  } catch (error) {
    return (error as InputError).problems as string[];
  }
  return spec;
}

const worker = { AMQP_URL: 'amqp://rabbit', TASKER_SIGNING_KEY: 'k'.repeat(32) };

describe('readCommandUser', () => {
  it('is unset by default: commands run as this process\'s own user', () => {
    expect(parse(undefined)).toBeUndefined();
    expect(parse('')).toBeUndefined();
    expect(loadWorkerConfig({}, worker, '/cwd').commandUser).toBeUndefined();
    expect(loadRunConfig(['jobs.sh'], {}, {}, '/cwd').commandUser).toBeUndefined();
  });

  it.each([
    ['nobody', { user: 'nobody', group: undefined }],
    ['1000', { user: '1000', group: undefined }],
    ['1000:1000', { user: '1000', group: '1000' }],
    ['runner:users', { user: 'runner', group: 'users' }],
    [' node ', { user: 'node', group: undefined }],
    ['svc_user.1-x:4294967294', { user: 'svc_user.1-x', group: '4294967294' }],
  ])('%j', (text, expected) => {
    expect(parse(text)).toEqual({ variable: 'WORKER_COMMAND_USER', ...expected });
  });

  it.each([
    ['root', /must not run as root/],
    ['0', /must not run as root/],
    ['000', /must not run as root/],
    ['nobody:0', /must not run as root or group root/],
    ['nobody:root', /must not run as root or group root/],
    ['a:b:c', /more than one ":"/],
    [':1000', /user "" is neither a name/],
    ['1000:', /group "" is neither a name/],
    ['no body', /user "no body" is neither a name/],
    ['-x', /user "-x" is neither a name/],
    ['4294967295', /larger than 4294967294/],
    ["$(id)", /user "\$\(id\)" is neither a name/],
  ])('refuses %j', (text, message) => {
    const problems = parse(text);
    expect(Array.isArray(problems)).toBe(true);
    expect((problems as string[]).join('\n')).toMatch(message);
    expect((problems as string[]).join('\n')).toContain('WORKER_COMMAND_USER');
  });

  it('is read by the worker from WORKER_COMMAND_USER and by the tasker from TASKER_COMMAND_USER, with the other problems', () => {
    expect(loadWorkerConfig({}, { ...worker, WORKER_COMMAND_USER: 'nobody' }, '/cwd').commandUser).toEqual({ variable: 'WORKER_COMMAND_USER', user: 'nobody', group: undefined });
    expect(loadRunConfig(['jobs.sh'], {}, { TASKER_COMMAND_USER: '1000:1000' }, '/cwd').commandUser).toEqual({ variable: 'TASKER_COMMAND_USER', user: '1000', group: '1000' });
    // The tasker ignores the worker's variable and the reverse: each names its own.
    expect(loadRunConfig(['jobs.sh'], {}, { WORKER_COMMAND_USER: 'nobody' }, '/cwd').commandUser).toBeUndefined();
    try {
      loadRunConfig(['jobs.sh'], { concurrency: 'x' }, { TASKER_COMMAND_USER: 'root' }, '/cwd');
      expect.unreachable('loadRunConfig should throw');
    } catch (error) {
      expect((error as InputError).problems).toEqual([expect.stringContaining('--concurrency'), expect.stringMatching(/^TASKER_COMMAND_USER "root": commands must not run as root/)]);
    }
  });
});

describe('resolveCommandUser', () => {
  const spec = (user: string, group?: string) => ({ variable: 'TASKER_COMMAND_USER', user, group });

  it('takes a user database name to its uid, group and home', () => {
    // Debian, the images and CI all have nobody; its uid differs elsewhere (macOS: -2).
    const nobody = resolveCommandUser(spec('nobody'));
    expect(nobody).toMatchObject({ name: 'nobody', uid: 65534, gid: 65534, label: 'nobody (65534:65534)' });
    expect(commandUserEnvironment(nobody)).toMatchObject({ USER: 'nobody', LOGNAME: 'nobody' });
    expect(resolveCommandUser(spec('65534'))).toMatchObject({ name: 'nobody', uid: 65534, gid: 65534 });
  });

  it('takes numbers as they are, with the group given', () => {
    const user = resolveCommandUser(spec('54321', '54322'));
    expect(user).toEqual({ uid: 54321, gid: 54322, label: 'uid (54321:54322)' });
    expect(commandUserEnvironment(user)).toEqual({});
  });

  it.each([
    [spec('no-such-user-here'), /TASKER_COMMAND_USER: no user "no-such-user-here"/],
    [spec('nobody', 'no-such-group-here'), /no group "no-such-group-here"/],
    [spec('54321'), /uid 54321 has no entry in the user database, so its group is unknown: give it as 54321:GID/],
    [spec('nobody', '0'), /root or has group root/],
  ])('refuses %j', (given, message) => {
    expect(() => resolveCommandUser(given)).toThrow(message);
  });
});

describe('secretsHeld', () => {
  it('names what a command of the same user could read in /proc, never the values', () => {
    const env = { TASKER_SIGNING_KEY: 'k'.repeat(32), RABBITMQ_PASSWORD: 'pw' };
    expect(secretsHeld({ amqpUrl: 'amqp://u:pw@rabbit', redisUrl: 'redis://:pw@redis' }, env)).toEqual(['TASKER_SIGNING_KEY', 'the RabbitMQ password', 'the Redis password']);
    expect(secretsHeld({ amqpUrl: 'amqp://rabbit', redisUrl: 'redis://redis' }, {})).toEqual([]);
    // A local run does not use Redis: its URL holds nothing worth saying.
    expect(secretsHeld({ amqpUrl: undefined, redisUrl: 'redis://:pw@redis' }, {})).toEqual([]);
  });
});

describe('redactedArgv', () => {
  it('hides the passwords of URLs given as flags, for the process title', () => {
    expect(redactedArgv(['node', 'worker.js', '--amqp-url', 'amqp://u:s3cret@rabbit:5672', '--redis-url=redis://:s3cret@redis'])).toEqual([
      'node',
      'worker.js',
      '--amqp-url',
      'amqp://u:***@rabbit:5672',
      '--redis-url=redis://:***@redis',
    ]);
    expect(redactedArgv(['node', 'tasker.js', 'run', '--amqp-url', 'amqp://rabbit', 'jobs.sh'])).toBeUndefined();
  });
});
