import type { ConfigProblems } from '../config/config-values.js';
import { envValue } from '../config/config-values.js';
import { lowercaseScheme, plainTextWarning, redactUrl } from '../config/urls.js';
import { readCertificates } from '../config/tls-config.js';

/**
 * How to reach S3 (or an S3-compatible service): read by the tasker and by every worker. Which
 * bucket, prefix and files a run uploads is the tasker's decision and travels in each command
 * message, so workers only need to know how to connect. Pure.
 */

/** Transport checksums: `when_required` works with every S3-compatible service; `when_supported` is the SDK's default (CRC32 on each request). */
export const s3ChecksumModes = ['when_required', 'when_supported'] as const;
export type S3ChecksumMode = (typeof s3ChecksumModes)[number];

export const s3ConnectionEnvironment = {
  S3_ENDPOINT_URL: { default: 'AWS S3', description: 'Endpoint of an S3-compatible service (MinIO, Ceph, Scaleway, ...), e.g. http://minio:9000.' },
  S3_FORCE_PATH_STYLE: { default: 'true with S3_ENDPOINT_URL, else false', description: 'Address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (most S3-compatible services need it).' },
  S3_CHECKSUM: { default: 'when_required', description: 'SDK request checksums: when_required (works everywhere) or when_supported (the SDK default, CRC32; AWS and recent MinIO). Every object is verified against the local file either way.' },
  AWS_REGION: { default: 'us-east-1', description: 'Region of the bucket (read by the AWS SDK, as are AWS_PROFILE and the rest of its credential chain).' },
  AWS_ACCESS_KEY_ID: { default: 'the AWS SDK credential chain', description: 'Access key; unset to use a profile, instance role or IRSA.' },
  AWS_SECRET_ACCESS_KEY: { default: 'the AWS SDK credential chain', description: 'Secret key (never logged).' },
  AWS_CA_BUNDLE: { default: "the system's CAs", description: "PEM file of the CA certificates an https:// S3 endpoint's certificate must chain to (they replace the system's CAs), as for the AWS CLI." },
} as const;

export interface S3Connection {
  /** Undefined: AWS S3. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  checksum: S3ChecksumMode;
  region: string;
  /** AWS_CA_BUNDLE, read; undefined: the system's CAs. Not read for an http:// endpoint. */
  caBundle: Buffer | undefined;
}

export function readS3Connection(env: Record<string, string | undefined>, problems: ConfigProblems): S3Connection {
  const endpointText = envValue(env, 'S3_ENDPOINT_URL');
  const endpoint = endpointText === undefined ? undefined : lowercaseScheme(endpointText);
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      problems.add(`S3_ENDPOINT_URL "${redactUrl(endpoint)}" is not a URL; expected e.g. http://minio:9000`);
    }
    if (url !== undefined && url.protocol !== 'http:' && url.protocol !== 'https:') problems.add(`S3_ENDPOINT_URL must start with http:// or https://, got "${url.protocol}"`);
    if (url !== undefined && (url.username !== '' || url.password !== '')) problems.add('S3_ENDPOINT_URL must not contain credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    problems.warn(plainTextWarning('S3_ENDPOINT_URL', endpoint));
  }
  // The AWS CLI's variable, which the JavaScript SDK does not read itself. Other AWS tools share
  // it, so with an http:// endpoint (no TLS to apply it to) it is left alone rather than refused.
  const caBundlePath = envValue(env, 'AWS_CA_BUNDLE');
  const caBundle = caBundlePath === undefined || endpoint?.startsWith('http:') === true ? undefined : readCertificates(problems, 'AWS_CA_BUNDLE', caBundlePath);
  const pathStyleText = envValue(env, 'S3_FORCE_PATH_STYLE');
  let forcePathStyle = endpoint !== undefined;
  if (pathStyleText !== undefined) {
    if (/^(true|1|yes)$/i.test(pathStyleText)) forcePathStyle = true;
    else if (/^(false|0|no)$/i.test(pathStyleText)) forcePathStyle = false;
    else problems.add(`S3_FORCE_PATH_STYLE must be true or false, got "${pathStyleText}"`);
  }
  const checksumText = (envValue(env, 'S3_CHECKSUM') ?? 'when_required').toLowerCase();
  const checksumKnown = (s3ChecksumModes as readonly string[]).includes(checksumText);
  if (!checksumKnown) problems.add(`S3_CHECKSUM must be one of ${s3ChecksumModes.join(', ')}, got "${envValue(env, 'S3_CHECKSUM')}"`);
  return {
    endpoint,
    forcePathStyle,
    checksum: checksumKnown ? (checksumText as S3ChecksumMode) : 'when_required',
    region: envValue(env, 'AWS_REGION') ?? envValue(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
    caBundle,
  };
}
