import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed command messages. With TASKER_SIGNING_KEY set, the tasker signs each message body
 * (HMAC-SHA256, in the `x-tasker-signature` header) and workers run only bodies whose signature
 * verifies. The body holds the command and its identity (run, command id, attempt, upload
 * target), so none of them can be changed, and a message cannot be moved to another run. A replay
 * of a message already run is a duplicate delivery: its recorded result is sent again, nothing
 * runs. Pure apart from the hash.
 */

export const signatureHeader = 'x-tasker-signature';
/** Scheme and version, so that a future scheme is recognised instead of failing to verify. */
const scheme = 'hmac-sha256-v1=';
/** Shorter keys are refused: an HMAC is only as strong as its key. */
export const minSigningKeyLength = 32;

export function checkSigningKey(key: string): string | undefined {
  if (key.length < minSigningKeyLength) {
    return `TASKER_SIGNING_KEY is too short (${key.length} characters): use at least ${minSigningKeyLength}, e.g. the output of: openssl rand -hex 32`;
  }
  return undefined;
}

export function signBody(key: string, body: Buffer): string {
  return scheme + createHmac('sha256', key).update(body).digest('hex');
}

/** Headers that sign `body` with `key`; none without a key (signing is off). */
export function signatureHeaders(key: string | undefined, body: Buffer): Record<string, string> {
  return key === undefined ? {} : { [signatureHeader]: signBody(key, body) };
}

/** Undefined when the signature verifies; otherwise why not (never echoing the key or a digest). */
export function verifyBody(key: string, body: Buffer, headers: Record<string, unknown>): string | undefined {
  const given = headers[signatureHeader];
  if (given === undefined) return 'unsigned message';
  const text = Buffer.isBuffer(given) ? given.toString('utf8') : given;
  if (typeof text !== 'string' || !text.startsWith(scheme)) return 'signature in an unknown format';
  const expected = Buffer.from(signBody(key, body));
  const actual = Buffer.from(text);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return 'signature does not verify (forged or altered, or signed with another key)';
  return undefined;
}
