import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed messages (HMAC-SHA256 with TASKER_SIGNING_KEY, in the `x-tasker-signature` header). What
 * is signed is the message's purpose, its destination and its body: a command is valid only as
 * work published with the routing key the tasker gave it, a result only on its run's queue, and
 * the body holds the run, command id, attempt and command. Whether the run still exists is for
 * Redis to say (the begin script): see docs/architecture.md. Pure apart from the hash.
 */

export const signatureHeader = 'x-tasker-signature';
/** Scheme and version, so that another scheme is recognised instead of failing to verify. */
const scheme = 'hmac-sha256-v2=';
/** The scheme before purpose and destination were signed: refused, with the reason. */
const oldScheme = 'hmac-sha256-v1=';
/** Shorter keys are refused: an HMAC is only as strong as its key. */
export const minSigningKeyLength = 32;

/**
 * What a signature is valid for. `work`: a command or bundle, destination the routing key it is
 * published with (run.RUN_ID, pool.POOL.run.RUN_ID). `result`: a worker's result, destination
 * the run's queue (NS.run.RUN_ID.done).
 */
export interface SignedFor {
  purpose: 'work' | 'result';
  destination: string;
}

export function checkSigningKey(key: string): string | undefined {
  if (key.length < minSigningKeyLength) {
    return `TASKER_SIGNING_KEY is too short (${key.length} characters): use at least ${minSigningKeyLength}, e.g. the output of: openssl rand -hex 32`;
  }
  return undefined;
}

/** The signature of `body` for `target`. Purpose and destination never hold a newline (names.ts), so the signed text is unambiguous. */
export function signMessage(key: string, body: Buffer, target: SignedFor): string {
  if (target.destination.includes('\n')) throw new Error(`cannot sign for a destination with a newline: ${JSON.stringify(target.destination)}`);
  return scheme + createHmac('sha256', key).update(`${target.purpose}\n${target.destination}\n`).update(body).digest('hex');
}

/** Headers that sign `body` for `target` with `key`; none without a key (signing is off). */
export function signatureHeaders(key: string | undefined, body: Buffer, target: SignedFor): Record<string, string> {
  return key === undefined ? {} : { [signatureHeader]: signMessage(key, body, target) };
}

/** The signature header's text, if the message carries one. */
export function signatureOf(headers: Record<string, unknown>): string | undefined {
  const given = headers[signatureHeader];
  if (given === undefined || given === null) return undefined;
  return Buffer.isBuffer(given) ? given.toString('utf8') : typeof given === 'string' ? given : String(given);
}

/** Undefined when the signature verifies for `target`; otherwise why not (never echoing the key or a digest). */
export function verifyMessage(key: string, body: Buffer, headers: Record<string, unknown>, target: SignedFor): string | undefined {
  const text = signatureOf(headers);
  if (text === undefined) return 'unsigned message';
  // Ours never hold one (names.ts); a routing key someone chose might, to shift bytes between destination and body.
  if (target.destination.includes('\n')) return `a destination with a newline is none of ours: ${JSON.stringify(target.destination)}`;
  if (text.startsWith(oldScheme)) return 'signed with the old scheme (hmac-sha256-v1: a tasker or worker of an older version): upgrade it, every tasker and worker signs purpose and destination now';
  if (!text.startsWith(scheme)) return 'signature in an unknown format';
  const expected = Buffer.from(signMessage(key, body, target));
  const actual = Buffer.from(text);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    return `signature does not verify as ${target.purpose} for ${target.destination} (forged, altered, replayed to another destination, or signed with another key)`;
  }
  return undefined;
}
