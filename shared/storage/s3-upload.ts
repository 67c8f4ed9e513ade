import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type PQueue from 'p-queue';
import { backoffMs } from '../config/backoff.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { etagMatches, objectKey, type OutputSpec, type UploadReport } from './outputs.js';
import { isPermanentUploadError } from './s3-errors.js';
import { localEtags } from './s3-etag.js';

/** Uploading files: one verified upload, retried with backoff, and many through a bounded queue. */

/** Resolved from S3StoreOptions, where each one's default is documented. */
export interface UploadSettings {
  maxAttempts: number;
  retryBaseMs: number;
  partSizeBytes: number;
  partsInFlight: number;
}

export type UploadFile = (bucket: string, key: string, path: string) => Promise<void>;

/** One attempt: multipart above the part size, then the object checked against the file. */
async function uploadOnce(client: S3Client, settings: UploadSettings, bucket: string, key: string, path: string): Promise<void> {
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: createReadStream(path) },
    partSize: settings.partSizeBytes,
    queueSize: settings.partsInFlight,
    leavePartsOnError: false,
  });
  const output = await upload.done();
  // Hash after the upload: the object must equal the file as it is now, so a file still being
  // written while it was sent shows up as a mismatch and is sent again.
  const expected = await localEtags(path, settings.partSizeBytes);
  if (!etagMatches(output.ETag, expected.whole, expected.multipart)) {
    throw new Error(`object s3://${bucket}/${key} does not match the file (ETag ${output.ETag ?? 'missing'}, expected ${expected.whole} or ${expected.multipart})`);
  }
}

/** Uploads one file, verified; throws after the last attempt, or at once on a permanent error. */
export function createFileUploader(client: S3Client, logger: Logger, settings: UploadSettings): UploadFile {
  return async function uploadFile(bucket, key, path) {
    for (let attempt = 1; ; attempt++) {
      try {
        await uploadOnce(client, settings, bucket, key, path);
        logger.debug({ bucket, key }, 'uploaded');
        return;
      } catch (error) {
        const permanent = isPermanentUploadError(error);
        if (permanent || attempt >= settings.maxAttempts) {
          throw new Error(`s3://${bucket}/${key}: ${errorMessage(error)}${permanent ? '' : ` (after ${attempt} attempts)`}`, { cause: error });
        }
        const delayMs = backoffMs(attempt, settings.retryBaseMs, 30_000);
        logger.warn({ bucket, key, attempt, delayMs, err: errorMessage(error) }, 'upload failed: retrying');
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };
}

/** Uploads `paths` (relative to `root`) under the spec's prefix; one failure does not stop the others. */
export async function uploadFiles(files: PQueue, uploadFile: UploadFile, spec: OutputSpec, root: string, paths: string[]): Promise<UploadReport> {
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
