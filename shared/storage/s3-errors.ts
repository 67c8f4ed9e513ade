/** Reading the SDK's errors: their code and HTTP status, and whether retrying can help. */

/** Errors an upload cannot outlast: retrying them only delays the report. */
const permanentErrors = new Set(['NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidBucketName', 'CredentialsProviderError']);

export function errorName(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const named = error as { name?: unknown; Code?: unknown };
  return typeof named.Code === 'string' ? named.Code : typeof named.name === 'string' ? named.name : '';
}

export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export function isPermanentUploadError(error: unknown): boolean {
  return permanentErrors.has(errorName(error)) || httpStatus(error) === 403 || httpStatus(error) === 404;
}
