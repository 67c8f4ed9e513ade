import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorMessage, InputError } from '../errors.js';
import type { S3Connection } from './s3-config.js';
import { errorName, httpStatus } from './s3-errors.js';

function where(connection: S3Connection): string {
  return connection.endpoint ?? `AWS S3 (region ${connection.region})`;
}

/** Fails with one clear InputError when the bucket is missing, forbidden or unreachable. */
export async function checkBucket(client: S3Client, connection: S3Connection, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    throw new InputError('config', bucketProblem(error, connection, bucket), { cause: error });
  }
}

/** What the failed check means, and what to set or create. */
function bucketProblem(error: unknown, connection: S3Connection, bucket: string): string {
  const name = errorName(error);
  const status = httpStatus(error);
  const at = where(connection);
  if (name === 'NotFound' || name === 'NoSuchBucket' || status === 404) {
    return `S3 bucket "${bucket}" does not exist at ${at}. Create it (aws s3 mb s3://${bucket}, or mc mb for MinIO) or set S3_BUCKET to an existing bucket.`;
  }
  if (name === 'CredentialsProviderError' || /credential/i.test(errorMessage(error))) {
    return `no S3 credentials found for bucket "${bucket}": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the pod a role (IRSA).`;
  }
  if (status === 403 || name === 'Forbidden' || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return `access to S3 bucket "${bucket}" at ${at} was denied: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the role's policy) and AWS_REGION.`;
  }
  if (/self[- ]signed|unable to (get|verify)|certificate|altnames/i.test(errorMessage(error))) {
    return `S3 at ${at} presented a certificate this client does not trust: ${errorMessage(error)} (AWS_CA_BUNDLE must name the CA that signed it; unset, the system's CAs are used).`;
  }
  if (status === 301 || name === 'PermanentRedirect') {
    return `S3 bucket "${bucket}" is in another region than ${connection.region}: set AWS_REGION to the bucket's region.`;
  }
  return `cannot reach S3 bucket "${bucket}" at ${at}: ${errorMessage(error) || name || 'no answer'}. Check S3_ENDPOINT_URL and the network.`;
}
