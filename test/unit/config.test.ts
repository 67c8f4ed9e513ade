import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../shared/errors.js';
import { loadRunConfig, type RunFlags } from '../../tasker/config.js';
import { loadWorkerConfig } from '../../worker/config.js';

function problemsOf(files: readonly string[], flags: RunFlags, env: Record<string, string | undefined> = {}): readonly string[] {
  try {
    loadRunConfig(files, flags, env, '/cwd');
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).code).toBe('config');
    expect((error as InputError).exitCode).toBe(2);
    return (error as InputError).problems;
  }
  throw new Error('expected loadRunConfig to throw');
}

describe('loadRunConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadRunConfig(['jobs.sh'], {}, {}, '/cwd');
    expect(config).toMatchObject({
      files: ['jobs.sh'],
      concurrency: Math.max(1, availableParallelism()),
      retries: 0,
      retryDelayMs: 1000,
      maxRetryDelayMs: 60_000,
      killGraceMs: 10_000,
      keepGoing: false,
      workdir: '/cwd',
      clean: false,
      forceClean: false,
      stage: [],
      mustExist: false,
      progressIntervalMs: 5000,
      reportIntervalMs: 2000,
      directExec: true,
      logLevel: 'info',
    });
    expect(config.timeoutMs).toBeUndefined();
    expect(config.split).toBeUndefined();
    expect(config.runId).toBeUndefined();
  });

  it('parses flags', () => {
    const config = loadRunConfig(
      ['a.sh', 'b.sh'],
      { concurrency: '8', retries: '2', retryDelay: '500ms', timeout: '2h', killGrace: '0', progressInterval: '1m', keepGoing: true, split: 'makita', workdir: '/w', clean: true, forceClean: true, runId: 'my-run', directExec: false, logLevel: 'debug' },
      {},
      '/cwd',
    );
    expect(config).toMatchObject({
      files: ['a.sh', 'b.sh'],
      concurrency: 8,
      retries: 2,
      retryDelayMs: 500,
      timeoutMs: 7_200_000,
      killGraceMs: 0,
      progressIntervalMs: 60_000,
      keepGoing: true,
      split: 'makita',
      workdir: '/w',
      clean: true,
      forceClean: true,
      runId: 'my-run',
      mustExist: false,
      directExec: false,
      logLevel: 'debug',
    });
  });

  it('takes WORKDIR, LOG_LEVEL and TASKER_PROGRESS_INTERVAL from the environment, flags first', () => {
    const env = { WORKDIR: '/from-env', LOG_LEVEL: 'warn', TASKER_PROGRESS_INTERVAL: '30s' };
    expect(loadRunConfig(['j'], {}, env, '/cwd')).toMatchObject({ workdir: '/from-env', logLevel: 'warn', progressIntervalMs: 30_000 });
    expect(loadRunConfig(['j'], {}, { TASKER_REPORT_INTERVAL: '2m' }, '/cwd').reportIntervalMs).toBe(120_000);
    expect(loadRunConfig(['j'], { workdir: '/flag', logLevel: 'error', progressInterval: '2s' }, env, '/cwd')).toMatchObject({
      workdir: '/flag',
      logLevel: 'error',
      progressIntervalMs: 2000,
    });
  });

  it('resumes a run without files', () => {
    expect(loadRunConfig([], { resume: 'r1' }, {}, '/cwd')).toMatchObject({ runId: 'r1', mustExist: true, files: [] });
  });

  it.each(['0', '-1', 'abc', '1.5', '', '2x'])('rejects --concurrency %j', (value) => {
    const problems = problemsOf(['j'], { concurrency: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^--concurrency must be/);
    expect(problems[0]).toContain(value === '0' ? 'got 0' : `"${value}"`);
  });

  it.each(['-1', 'two', '0.5'])('rejects --retries %j', (value) => {
    expect(problemsOf(['j'], { retries: value })).toEqual([expect.stringMatching(/^--retries must be a whole number/)]);
  });

  it('accepts --retries 0 and --retry-delay 0', () => {
    expect(loadRunConfig(['j'], { retries: '0', retryDelay: '0' }, {}, '/cwd')).toMatchObject({ retries: 0, retryDelayMs: 0 });
  });

  it.each([
    ['timeout', '--timeout', 'soon'],
    ['timeout', '--timeout', '0'],
    ['timeout', '--timeout', '-5s'],
    ['retryDelay', '--retry-delay', '1 minute please'],
    ['killGrace', '--kill-grace', '-1'],
    ['progressInterval', '--progress-interval', '0s'],
  ] as const)('rejects the duration %s (%s %j)', (key, flag, value) => {
    const problems = problemsOf(['j'], { [key]: value });
    expect(problems).toEqual([`${flag} must be a duration such as 90s, 15m or 2h, got "${value}"`]);
  });

  it('names the environment variable when TASKER_PROGRESS_INTERVAL is bad', () => {
    expect(problemsOf(['j'], {}, { TASKER_PROGRESS_INTERVAL: 'often' })).toEqual([expect.stringMatching(/^TASKER_PROGRESS_INTERVAL must be a duration/)]);
  });

  it('rejects an unknown --split preset and log level', () => {
    expect(problemsOf(['j'], { split: 'Makita' })).toEqual(['--split must be one of: makita; got "Makita"']);
    expect(problemsOf(['j'], {}, { LOG_LEVEL: 'verbose' })).toEqual([expect.stringMatching(/log level must be one of .*"verbose"/)]);
  });

  it('rejects a missing jobs file unless resuming', () => {
    expect(problemsOf([], {})).toEqual([expect.stringMatching(/^no jobs file given/)]);
  });

  it('rejects --force-clean without --clean', () => {
    expect(problemsOf(['j'], { forceClean: true })).toEqual(['--force-clean only makes sense with --clean']);
    expect(problemsOf(['j'], { forceClean: true, clean: false })).toHaveLength(1);
  });

  it('rejects bad or conflicting run ids', () => {
    expect(problemsOf(['j'], { runId: '../x' })).toEqual([expect.stringMatching(/^--run-id "\.\.\/x" is not a valid run id/)]);
    expect(problemsOf([], { resume: 'a b' })).toEqual([expect.stringMatching(/^--resume "a b" is not a valid run id/)]);
    expect(problemsOf(['j'], { runId: 'r1', resume: 'r2' })).toEqual(['--run-id and --resume name different runs; give one of them']);
  });

  it('reports every problem at once, in one InputError', () => {
    let error: unknown;
    try {
      loadRunConfig([], { concurrency: '0', retries: 'x', timeout: 'never', killGrace: 'abc', split: 'foo', forceClean: true, runId: '-bad', logLevel: 'loud' }, {}, '/cwd');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InputError);
    const problems = (error as InputError).problems;
    expect(problems).toHaveLength(9);
    for (const start of ['--concurrency', '--retries', '--timeout', '--kill-grace', '--split', 'log level', '--run-id', 'no jobs file', '--force-clean']) {
      expect(problems.filter((problem) => problem.startsWith(start)), start).toHaveLength(1);
    }
    expect((error as InputError).message).toMatch(/^9 problems:\n {2}- /);
    for (const problem of problems) expect((error as InputError).message).toContain(problem);
  });

  describe('S3', () => {
    it('is off unless S3_BUCKET is set', () => {
      expect(loadRunConfig(['j'], {}, {}, '/cwd').s3).toBeUndefined();
    });

    it('reads bucket, prefix, patterns and connection', () => {
      const config = loadRunConfig(['j'], {}, { S3_BUCKET: 'my-bucket', S3_PREFIX: '/a//b/', S3_UPLOAD: 'out/*.json,fig/*.png', S3_ENDPOINT_URL: 'http://minio:9000' }, '/cwd');
      expect(config.s3).toEqual({
        bucket: 'my-bucket',
        prefix: 'a/b',
        patterns: ['out/*.json', 'fig/*.png'],
        connection: { endpoint: 'http://minio:9000', forcePathStyle: true, checksum: 'when_required', region: 'us-east-1' },
      });
    });

    it('names S3 settings that make no sense', () => {
      expect(problemsOf(['j'], {}, { S3_UPLOAD: 'out/*' })[0]).toContain('S3_BUCKET is not');
      const problems = problemsOf(['j'], {}, { S3_BUCKET: 'Bad_Bucket', S3_UPLOAD: '../x', S3_PREFIX: 'a/../b' });
      expect(problems).toHaveLength(3);
    });
  });

  it('reads --halt: never by default; soon or now; not with --keep-going', () => {
    expect(loadRunConfig(['jobs.sh'], {}, {}, '/cwd').halt).toBe('never');
    expect(loadRunConfig(['jobs.sh'], { halt: 'now' }, {}, '/cwd').halt).toBe('now');
    expect(() => loadRunConfig(['jobs.sh'], { halt: 'sometime' }, {}, '/cwd')).toThrow('--halt must be one of: never, soon, now; got "sometime"');
    expect(() => loadRunConfig(['jobs.sh'], { halt: 'now' }, { AMQP_URL: 'amqp://rabbit', TASKER_SIGNING_KEY: 'k'.repeat(32) }, '/cwd')).toThrow('--halt works in local runs only for now');
    expect(() => loadRunConfig(['jobs.sh'], { halt: 'soon', keepGoing: true }, {}, '/cwd')).toThrow('--halt soon stops the run at the first failure and --keep-going runs on after failures: give one of them');
  });
});

describe('signing fails closed', () => {
  const broker = { AMQP_URL: 'amqp://rabbit' };
  const key = 'k'.repeat(32);

  it('the tasker needs TASKER_SIGNING_KEY with a broker, unless TASKER_SIGNING=off', () => {
    const [problem] = problemsOf(['j'], {}, broker);
    expect(problem).toMatch(/TASKER_SIGNING_KEY is not set: with AMQP_URL, the tasker and every worker need the same signing key/);
    expect(problem).toContain('TASKER_SIGNING=off');
    expect(loadRunConfig(['j'], {}, { ...broker, TASKER_SIGNING_KEY: key }, '/cwd')).toMatchObject({ signingKey: key, signingOff: false });
    expect(loadRunConfig(['j'], {}, { ...broker, TASKER_SIGNING: 'off' }, '/cwd')).toMatchObject({ signingKey: undefined, signingOff: true });
    expect(loadRunConfig(['j'], { amqpUrl: 'amqp://flag' }, { TASKER_SIGNING: 'OFF' }, '/cwd').signingOff).toBe(true);
    // A local run signs nothing: no key needed.
    expect(loadRunConfig(['j'], {}, {}, '/cwd')).toMatchObject({ signingKey: undefined, signingOff: false });
    expect(problemsOf(['j'], { amqpUrl: 'amqp://flag' }, {})[0]).toContain('TASKER_SIGNING_KEY is not set');
  });

  it('refuses a key with the opt-out, and an opt-out it does not know', () => {
    expect(problemsOf(['j'], {}, { ...broker, TASKER_SIGNING_KEY: key, TASKER_SIGNING: 'off' })).toEqual([expect.stringMatching(/TASKER_SIGNING=off and TASKER_SIGNING_KEY are both set/)]);
    expect(problemsOf(['j'], {}, { ...broker, TASKER_SIGNING_KEY: key, TASKER_SIGNING: 'no' })).toEqual(['TASKER_SIGNING must be on (the default) or off, got "no"']);
    expect(loadRunConfig(['j'], {}, { ...broker, TASKER_SIGNING_KEY: key, TASKER_SIGNING: 'on' }, '/cwd').signingKey).toBe(key);
  });

  it('the worker needs TASKER_SIGNING_KEY unless TASKER_SIGNING=off', () => {
    expect(() => loadWorkerConfig({}, broker, '/cwd')).toThrow(/TASKER_SIGNING_KEY is not set.*TASKER_SIGNING=off/s);
    try {
      loadWorkerConfig({}, broker, '/cwd');
    } catch (error) {
      expect((error as InputError).exitCode).toBe(2);
    }
    expect(loadWorkerConfig({}, { ...broker, TASKER_SIGNING_KEY: key }, '/cwd')).toMatchObject({ signingKey: key, signingOff: false });
    expect(loadWorkerConfig({}, { ...broker, TASKER_SIGNING: 'off' }, '/cwd')).toMatchObject({ signingKey: undefined, signingOff: true });
    expect(() => loadWorkerConfig({}, { ...broker, TASKER_SIGNING: 'off', TASKER_SIGNING_KEY: key }, '/cwd')).toThrow(/both set/);
  });
});
