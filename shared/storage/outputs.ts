import type { ExecutionResult } from '../exec/executor-contract.js';

/**
 * Uploading what a command produced: the pure part. Which files count (patterns, changes between
 * two snapshots), where they go (object keys), and what an upload report does to a result.
 * The S3 adapter (s3-store.ts and its parts) does the I/O.
 */

/** What a run uploads; chosen by the tasker, carried in every command message. */
export interface OutputSpec {
  bucket: string;
  /** Keys are `prefix/<path relative to the workdir>`; no leading or trailing slash. */
  prefix: string;
  /** Glob patterns relative to the workdir. Empty: only the run record is uploaded, at the end. */
  patterns: string[];
}

/** One file as seen by a snapshot: enough to tell that it was created or changed. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

export type Snapshot = Map<string, FileStamp>;

export type UploadReport = { ok: true; keys: string[] } | { ok: false; keys: string[]; reason: string };

/** Watches a command's outputs: taken before it starts, finished after it succeeded. */
export interface OutputWatch {
  /** Uploads the matching files the command created or changed. Never throws. */
  finish(): Promise<UploadReport>;
}

/** The port local dispatch and the worker use; undefined when the run uploads nothing per command. */
export type WatchOutputs = (spec: OutputSpec, workdir: string) => Promise<OutputWatch>;

/** Problems with upload patterns: each must stay inside the workdir. */
export function checkUploadPatterns(patterns: readonly string[]): string[] {
  const problems: string[] = [];
  for (const pattern of patterns) {
    if (pattern.startsWith('/') || /^[A-Za-z]:[\\/]/.test(pattern)) problems.push(`S3_UPLOAD pattern "${pattern}" is absolute; patterns are relative to the workdir, e.g. output/**/*.json`);
    else if (pattern.split(/[\\/]/).includes('..')) problems.push(`S3_UPLOAD pattern "${pattern}" contains "..": only files inside the workdir are uploaded`);
    else if (pattern.startsWith('.tasker/') || pattern === '.tasker') {
      // The run record and logs are uploaded once, at the end of the run, not while being written.
      problems.push(`S3_UPLOAD pattern "${pattern}" would match the run's own files under .tasker/; start it with the output directory, e.g. output/**/*.json`);
    }
  }
  return problems;
}

/** Splits the S3_UPLOAD value: comma-separated, blanks ignored. */
export function parseUploadPatterns(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text
    .split(',')
    .map((pattern) => pattern.trim())
    .filter((pattern) => pattern !== '');
}

/** A prefix as keys use it: no leading, trailing or doubled slashes. */
export function normalizePrefix(prefix: string): string {
  return prefix.split('/').filter((part) => part !== '').join('/');
}

/** Object key of a file, from its path relative to the workdir (always with forward slashes). */
export function objectKey(prefix: string, relativePath: string): string {
  const path = relativePath.split(/[\\/]/).filter((part) => part !== '' && part !== '.').join('/');
  return prefix === '' ? path : `${prefix}/${path}`;
}

/** Files present after that were absent before or differ in size, modification time or inode. */
export function changedFiles(before: Snapshot, after: Snapshot): string[] {
  const changed: string[] = [];
  for (const [path, stamp] of after) {
    const old = before.get(path);
    if (old === undefined || old.size !== stamp.size || old.mtimeMs !== stamp.mtimeMs || old.ino !== stamp.ino) changed.push(path);
  }
  return changed.sort();
}

/**
 * Whether an object's ETag matches the local file. S3 and MinIO give a multipart object the MD5 of
 * its parts' MD5s with `-N`; some services (s3rver, Ceph in some setups) give the MD5 of the whole
 * content. Both are checked against the file's own bytes.
 */
export function etagMatches(etag: string | undefined, wholeMd5Hex: string, multipartEtag: string): boolean {
  if (etag === undefined) return false;
  const bare = etag.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return bare === wholeMd5Hex || bare === multipartEtag;
}

/** The result of a succeeded attempt, after its uploads: a failed upload fails the attempt. */
export function applyUploadReport(result: ExecutionResult, report: UploadReport): ExecutionResult {
  if (report.ok) return report.keys.length === 0 ? result : { ...result, uploaded: report.keys };
  return {
    ...result,
    outcome: 'upload-failed',
    reason: `command succeeded but its outputs could not be uploaded: ${report.reason}`,
    ...(report.keys.length === 0 ? {} : { uploaded: report.keys }),
  };
}
