import { realpath } from 'node:fs/promises';
import { S3Client } from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { filesUnder, snapshotOutputs } from './output-files.js';
import { changedFiles, type OutputSpec, type OutputWatch, type UploadReport } from './outputs.js';
import { checkBucket } from './s3-bucket-check.js';
import type { S3Connection } from './s3-config.js';
import { createFileUploader, uploadFiles } from './s3-upload.js';

/**
 * The S3 adapter: checks a bucket, uploads files (multipart above `partSizeBytes`, memory bounded
 * by parts in flight), verifies every object's ETag against the local bytes, retries with backoff.
 * Its parts are the other s3-*.ts files and output-files.ts.
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

function createS3Client(connection: S3Connection): S3Client {
  const checksum = connection.checksum === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new S3Client({
    region: connection.region,
    ...(connection.endpoint === undefined ? {} : { endpoint: connection.endpoint }),
    forcePathStyle: connection.forcePathStyle,
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    // The SDK retries throttling and 5xx answers itself; our attempts wrap whole uploads.
    maxAttempts: 3,
    // AWS_CA_BUNDLE: the SDK makes its keep-alive https.Agent with these options, for https:// only.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000, ...(connection.caBundle === undefined ? {} : { httpsAgent: { ca: connection.caBundle } }) },
  });
}

export function createS3Store(options: S3StoreOptions): S3Store {
  const { connection, logger } = options;
  const client = createS3Client(connection);
  const uploadFile = createFileUploader(client, logger, {
    maxAttempts: options.maxAttempts ?? 5,
    retryBaseMs: options.retryBaseMs ?? 500,
    partSizeBytes: options.partSizeBytes ?? 8 * 1024 * 1024,
    partsInFlight: options.partsInFlight ?? 2,
  });
  const files = new PQueue({ concurrency: options.filesInFlight ?? 4 });

  return {
    checkBucket: (bucket) => checkBucket(client, connection, bucket),
    uploadFile,
    async watchOutputs(spec, workdir) {
      const before = await snapshotOutputs(spec.patterns, workdir, logger);
      return {
        async finish() {
          try {
            const root = await realpath(workdir);
            const after = await snapshotOutputs(spec.patterns, workdir, logger);
            return await uploadFiles(files, uploadFile, spec, root, changedFiles(before, after));
          } catch (error) {
            return { ok: false, keys: [], reason: `could not list the outputs: ${errorMessage(error)}` };
          }
        },
      };
    },
    async uploadDirectory(spec, workdir, directory) {
      try {
        const root = await realpath(workdir);
        return await uploadFiles(files, uploadFile, spec, root, await filesUnder(root, directory));
      } catch (error) {
        return { ok: false, keys: [], reason: `could not list ${directory}: ${errorMessage(error)}` };
      }
    },
    close() {
      client.destroy();
    },
  };
}
