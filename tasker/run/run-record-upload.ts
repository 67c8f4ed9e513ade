import { relative } from 'node:path';
import type { Logger } from '../../shared/observe/logger.js';
import { objectKey, type OutputSpec } from '../../shared/storage/outputs.js';
import type { S3Store } from '../../shared/storage/s3-store.js';

/** The end of a run with S3 on: its run record (the run directory) goes up once, when nothing writes to it any more. */

export interface RunRecordUpload {
  outputs: { store: Pick<S3Store, 'uploadDirectory'>; spec: OutputSpec };
  workdir: string;
  /** The run directory (plan, results, summary, every log), inside `workdir`. */
  runDir: string;
  runId: string;
  logger: Logger;
  writeOut: (text: string) => void;
}

/** Uploads the run directory to S3 and tells the user where it went. Returns false when the upload failed. */
export async function uploadRunRecord(input: RunRecordUpload): Promise<boolean> {
  const { outputs, workdir, runId, logger, writeOut } = input;
  const { bucket, prefix } = outputs.spec;
  const runDir = relative(workdir, input.runDir);
  const report = await outputs.store.uploadDirectory(outputs.spec, workdir, runDir);
  if (report.ok) {
    logger.info({ runId, bucket, objects: report.keys.length }, 'run record uploaded');
    writeOut(`S3: run record uploaded to s3://${bucket}/${objectKey(prefix, runDir)}/ (${report.keys.length} objects)\n`);
    return true;
  }
  logger.error({ runId, bucket, reason: report.reason }, 'run record upload failed');
  writeOut(`S3: the run record could not be uploaded to s3://${bucket}/${prefix}/: ${report.reason}\n`);
  return false;
}
