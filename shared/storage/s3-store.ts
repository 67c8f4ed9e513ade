import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import PQueue from 'p-queue';
import { glob } from 'tinyglobby';
import { backoffMs } from '../config/backoff.js';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { changedFiles, etagMatches, objectKey, type OutputSpec, type OutputWatch, type Snapshot, type UploadReport } from './outputs.js';
import type { S3Connection } from './s3-config.js';

/**
 * The S3 adapter: checks a bucket, uploads files (multipart above `partSizeBytes`, memory bounded
 * by parts in flight), verifies every object's ETag against the local bytes, retries with backoff.
 */

export interface S3StoreOptions {
  connection: S3Connection;
  logger: Logger;
  /** Attempts per file, each a full upload, before the file counts as failed. Default 5. */
  maxAttempts?: number;
  /** Base of the backoff between attempts. Default 500 ms. */
  retryBaseMs?: number;
  /** Multipart part size. Default 8 MiB (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts of one file uploaded at once. Default 2: at most partSize x 2 buffered per file. */
  partsInFlight?: number;
  /** Files uploaded at once. Default 4. */
  filesInFlight?: number;
}

export interface S3Store {
  /** Fails with one clear InputError when the bucket is missing, forbidden or unreachable. */
  checkBucket(bucket: string): Promise<void>;
  /** Uploads one file, verified; throws after the last attempt. */
  uploadFile(bucket: string, key: string, path: string): Promise<void>;
  /** Snapshot now; `finish()` uploads the matching files created or changed since. */
  watchOutputs(spec: OutputSpec, workdir: string): Promise<OutputWatch>;
  /** Uploads every file under `directory` (relative to the workdir). */
  uploadDirectory(spec: OutputSpec, workdir: string, directory: string): Promise<UploadReport>;
  close(): void;
}

/** Errors an upload cannot outlast: retrying them only delays the report. */
const permanentErrors = new Set(['NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidBucketName', 'CredentialsProviderError']);

function errorName(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const named = error as { name?: unknown; Code?: unknown };
  return typeof named.Code === 'string' ? named.Code : typeof named.name === 'string' ? named.name : '';
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function where(connection: S3Connection): string {
  return connection.endpoint ?? `AWS S3 (region ${connection.region})`;
}

export function createS3Store(options: S3StoreOptions): S3Store {
  const { connection, logger } = options;
  const maxAttempts = options.maxAttempts ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const partSize = options.partSizeBytes ?? 8 * 1024 * 1024;
  const checksum = connection.checksum === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const client = new S3Client({
    region: connection.region,
    ...(connection.endpoint === undefined ? {} : { endpoint: connection.endpoint }),
    forcePathStyle: connection.forcePathStyle,
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    // The SDK retries throttling and 5xx answers itself; our attempts wrap whole uploads.
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
  const files = new PQueue({ concurrency: options.filesInFlight ?? 4 });

  /** MD5 of the whole file and the multipart form (MD5 of the parts' MD5s, `-N`) for our part size. */
  async function localEtags(path: string): Promise<{ whole: string; multipart: string; bytes: number }> {
    const whole = createHash('md5');
    const parts: Buffer[] = [];
    let part = createHash('md5');
    let inPart = 0;
    let bytes = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      whole.update(chunk);
      bytes += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(partSize - inPart, chunk.length - offset);
        part.update(chunk.subarray(offset, offset + take));
        inPart += take;
        offset += take;
        if (inPart === partSize) {
          parts.push(part.digest());
          part = createHash('md5');
          inPart = 0;
        }
      }
    }
    if (inPart > 0 || parts.length === 0) parts.push(part.digest());
    const multipart = `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
    return { whole: whole.digest('hex'), multipart, bytes };
  }

  async function uploadOnce(bucket: string, key: string, path: string): Promise<void> {
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: createReadStream(path) },
      partSize,
      queueSize: options.partsInFlight ?? 2,
      leavePartsOnError: false,
    });
    const output = await upload.done();
    // Hash after the upload: the object must equal the file as it is now, so a file still being
    // written while it was sent shows up as a mismatch and is sent again.
    const expected = await localEtags(path);
    if (!etagMatches(output.ETag, expected.whole, expected.multipart)) {
      throw new Error(`object s3://${bucket}/${key} does not match the file (ETag ${output.ETag ?? 'missing'}, expected ${expected.whole} or ${expected.multipart})`);
    }
  }

  async function uploadFile(bucket: string, key: string, path: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await uploadOnce(bucket, key, path);
        logger.debug({ bucket, key }, 'uploaded');
        return;
      } catch (error) {
        const permanent = permanentErrors.has(errorName(error)) || httpStatus(error) === 403 || httpStatus(error) === 404;
        if (permanent || attempt >= maxAttempts) {
          throw new Error(`s3://${bucket}/${key}: ${errorMessage(error)}${permanent ? '' : ` (after ${attempt} attempts)`}`, { cause: error });
        }
        const delayMs = backoffMs(attempt, retryBaseMs, 30_000);
        logger.warn({ bucket, key, attempt, delayMs, err: errorMessage(error) }, 'upload failed: retrying');
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** Regular files matching the patterns whose real path stays inside the workdir. */
  async function snapshot(patterns: string[], workdir: string): Promise<Snapshot> {
    const result: Snapshot = new Map();
    if (patterns.length === 0) return result;
    const root = await realpath(workdir);
    const matches = await glob(patterns, { cwd: root, onlyFiles: true, followSymbolicLinks: false, ignore: ['.tasker/**'], expandDirectories: false });
    for (const path of matches) {
      const absolute = join(root, path);
      try {
        const real = await realpath(absolute);
        if (!real.startsWith(root + sep)) {
          logger.warn({ path }, 'not uploaded: it is a link to outside the workdir');
          continue;
        }
        const stamp = await stat(real);
        if (!stamp.isFile()) continue;
        result.set(relative(root, absolute).split(sep).join('/'), { size: stamp.size, mtimeMs: stamp.mtimeMs, ino: stamp.ino });
      } catch (error) {
        // Deleted between the listing and the stat (a temporary file): nothing to upload.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return result;
  }

  async function uploadAll(spec: OutputSpec, root: string, paths: string[]): Promise<UploadReport> {
    const keys: string[] = [];
    const failures: string[] = [];
    await Promise.all(
      paths.map((path) =>
        files.add(async () => {
          const key = objectKey(spec.prefix, path);
          try {
            await uploadFile(spec.bucket, key, join(root, path));
            keys.push(key);
          } catch (error) {
            failures.push(errorMessage(error));
          }
        }),
      ),
    );
    keys.sort();
    if (failures.length === 0) return { ok: true, keys };
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more)` : '';
    return { ok: false, keys, reason: `${failures.length} of ${paths.length} uploads failed: ${failures[0]}${more}` };
  }

  return {
    async checkBucket(bucket) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        const name = errorName(error);
        const status = httpStatus(error);
        const at = where(connection);
        let message: string;
        if (name === 'NotFound' || name === 'NoSuchBucket' || status === 404) {
          message = `S3 bucket "${bucket}" does not exist at ${at}. Create it (aws s3 mb s3://${bucket}, or mc mb for MinIO) or set S3_BUCKET to an existing bucket.`;
        } else if (name === 'CredentialsProviderError' || /credential/i.test(errorMessage(error))) {
          message = `no S3 credentials found for bucket "${bucket}": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the pod a role (IRSA).`;
        } else if (status === 403 || name === 'Forbidden' || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
          message = `access to S3 bucket "${bucket}" at ${at} was denied: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the role's policy) and AWS_REGION.`;
        } else if (status === 301 || name === 'PermanentRedirect') {
          message = `S3 bucket "${bucket}" is in another region than ${connection.region}: set AWS_REGION to the bucket's region.`;
        } else {
          message = `cannot reach S3 bucket "${bucket}" at ${at}: ${errorMessage(error) || name || 'no answer'}. Check S3_ENDPOINT_URL and the network.`;
        }
        throw new InputError('config', message, { cause: error });
      }
    },
    uploadFile,
    async watchOutputs(spec, workdir) {
      const before = await snapshot(spec.patterns, workdir);
      return {
        async finish() {
          try {
            const root = await realpath(workdir);
            return await uploadAll(spec, root, changedFiles(before, await snapshot(spec.patterns, workdir)));
          } catch (error) {
            return { ok: false, keys: [], reason: `could not list the outputs: ${errorMessage(error)}` };
          }
        },
      };
    },
    async uploadDirectory(spec, workdir, directory) {
      try {
        const root = await realpath(workdir);
        const entries = await readdir(join(root, directory), { recursive: true, withFileTypes: true });
        const paths = entries.filter((entry) => entry.isFile()).map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'));
        return await uploadAll(spec, root, paths.sort());
      } catch (error) {
        return { ok: false, keys: [], reason: `could not list ${directory}: ${errorMessage(error)}` };
      }
    },
    close() {
      client.destroy();
    },
  };
}
