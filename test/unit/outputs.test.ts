import { describe, expect, it } from 'vitest';
import { collectProblems } from '../../shared/config/config-values.js';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import { applyUploadReport, changedFiles, checkUploadPatterns, etagMatches, normalizePrefix, objectKey, parseUploadPatterns, type Snapshot } from '../../shared/storage/outputs.js';
import { readS3Connection } from '../../shared/storage/s3-config.js';

describe('upload patterns', () => {
  it('splits S3_UPLOAD on commas and ignores blanks', () => {
    expect(parseUploadPatterns(' output/**/metrics_*.json, ,output/figures/*.png,')).toEqual(['output/**/metrics_*.json', 'output/figures/*.png']);
    expect(parseUploadPatterns(undefined)).toEqual([]);
  });

  it('accepts patterns inside the workdir and names each one that leaves it', () => {
    expect(checkUploadPatterns(['output/**/*.json', 'figures/*.png', '**/*.csv'])).toEqual([]);
    const problems = checkUploadPatterns(['../x/*', 'a/../../b', '/etc/passwd', '.tasker/**', 'C:\\data\\*']);
    expect(problems).toHaveLength(5);
    expect(problems[0]).toContain('"../x/*"');
  });
});

describe('object keys', () => {
  it('joins the prefix and the path with single slashes', () => {
    expect(normalizePrefix('/projects//sim-3/')).toBe('projects/sim-3');
    expect(objectKey('run-1', 'output/./a.json')).toBe('run-1/output/a.json');
    expect(objectKey('', 'a.json')).toBe('a.json');
  });
});

describe('changedFiles', () => {
  it('lists files created, resized, touched or replaced; not unchanged or deleted ones', () => {
    const before: Snapshot = new Map([
      ['same', { size: 1, mtimeMs: 1, ino: 1 }],
      ['grown', { size: 1, mtimeMs: 1, ino: 2 }],
      ['touched', { size: 1, mtimeMs: 1, ino: 3 }],
      ['replaced', { size: 1, mtimeMs: 1, ino: 4 }],
      ['deleted', { size: 1, mtimeMs: 1, ino: 5 }],
    ]);
    const after: Snapshot = new Map([
      ['same', { size: 1, mtimeMs: 1, ino: 1 }],
      ['grown', { size: 2, mtimeMs: 1, ino: 2 }],
      ['touched', { size: 1, mtimeMs: 2, ino: 3 }],
      ['replaced', { size: 1, mtimeMs: 1, ino: 9 }],
      ['new', { size: 0, mtimeMs: 5, ino: 6 }],
    ]);
    expect(changedFiles(before, after)).toEqual(['grown', 'new', 'replaced', 'touched']);
  });
});

describe('etagMatches', () => {
  it('accepts the whole-file MD5 or the multipart form, quoted or not, and nothing else', () => {
    expect(etagMatches('"abc"', 'abc', 'def-2')).toBe(true);
    expect(etagMatches('"DEF-2"', 'abc', 'def-2')).toBe(true);
    expect(etagMatches('abc-1', 'abc', 'def-2')).toBe(false);
    expect(etagMatches(undefined, 'abc', 'def-2')).toBe(false);
  });
});

describe('applyUploadReport', () => {
  const ok: ExecutionResult = { outcome: 'succeeded', exitCode: 0, signal: null, startedAt: 'a', finishedAt: 'b', durationMs: 1, tail: '' };
  it('keeps a success and records the keys', () => {
    expect(applyUploadReport(ok, { ok: true, keys: ['k'] })).toEqual({ ...ok, uploaded: ['k'] });
    expect(applyUploadReport(ok, { ok: true, keys: [] })).toEqual(ok);
  });
  it('turns a failed upload into a failed attempt with the reason', () => {
    const failed = applyUploadReport(ok, { ok: false, keys: ['k'], reason: '1 of 2 uploads failed: AccessDenied' });
    expect(failed).toMatchObject({ outcome: 'upload-failed', exitCode: 0, uploaded: ['k'] });
    expect(failed.reason).toContain('AccessDenied');
  });
});

describe('readS3Connection', () => {
  function read(env: Record<string, string>) {
    const problems = collectProblems();
    const connection = readS3Connection(env, problems);
    let error: unknown;
    try {
      problems.done();
    } catch (caught) {
      error = caught;
    }
    return { connection, error: error as Error | undefined };
  }

  it('defaults to AWS, virtual-host style, request checksums only when required', () => {
    expect(read({}).connection).toEqual({ endpoint: undefined, forcePathStyle: false, checksum: 'when_required', region: 'us-east-1' });
  });

  it('uses path style with an endpoint unless told otherwise', () => {
    expect(read({ S3_ENDPOINT_URL: 'http://minio:9000' }).connection.forcePathStyle).toBe(true);
    expect(read({ S3_ENDPOINT_URL: 'http://minio:9000', S3_FORCE_PATH_STYLE: 'false' }).connection.forcePathStyle).toBe(false);
    expect(read({ AWS_REGION: 'eu-west-1', S3_CHECKSUM: 'WHEN_SUPPORTED' }).connection).toMatchObject({ region: 'eu-west-1', checksum: 'when_supported' });
  });

  it('reports every bad value at once, without echoing credentials', () => {
    const { error } = read({ S3_ENDPOINT_URL: 'http://key:hunter2@minio:9000', S3_FORCE_PATH_STYLE: 'maybe', S3_CHECKSUM: 'md7' });
    expect(error?.message).toContain('3 problems');
    expect(error?.message).toContain('S3_FORCE_PATH_STYLE');
    expect(error?.message).toContain('S3_CHECKSUM');
    expect(error?.message).not.toContain('hunter2');
    expect(read({ S3_ENDPOINT_URL: 'minio:9000' }).error?.message).toContain('http://');
  });
});
