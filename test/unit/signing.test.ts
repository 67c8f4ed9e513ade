import { describe, expect, it } from 'vitest';
import { checkSigningKey, signatureHeader, signatureHeaders, signBody, verifyBody } from '../../shared/broker/signing.js';

const key = 'k'.repeat(40);
const body = Buffer.from('{"v":1,"kind":"command","command":"echo hi"}');

describe('signing', () => {
  it('verifies what was signed with the same key', () => {
    expect(verifyBody(key, body, { [signatureHeader]: signBody(key, body) })).toBeUndefined();
    // amqplib hands string headers over as Buffers in some paths
    expect(verifyBody(key, body, { [signatureHeader]: Buffer.from(signBody(key, body)) })).toBeUndefined();
  });

  it('refuses unsigned, tampered, foreign-key and malformed signatures, without echoing a digest', () => {
    expect(verifyBody(key, body, {})).toBe('unsigned message');
    const tampered = Buffer.from(body.toString().replace('echo hi', 'rm -rf /'));
    expect(verifyBody(key, tampered, { [signatureHeader]: signBody(key, body) })).toContain('does not verify');
    expect(verifyBody(key, body, { [signatureHeader]: signBody('x'.repeat(40), body) })).toContain('does not verify');
    expect(verifyBody(key, body, { [signatureHeader]: 'sha1=abc' })).toContain('unknown format');
    expect(verifyBody(key, body, { [signatureHeader]: 42 })).toContain('unknown format');
    expect(verifyBody(key, tampered, { [signatureHeader]: signBody(key, body) })).not.toMatch(/[0-9a-f]{64}/);
  });

  it('signs through headers only when there is a key', () => {
    expect(signatureHeaders(undefined, body)).toEqual({});
    expect(verifyBody(key, body, signatureHeaders(key, body))).toBeUndefined();
  });

  it('refuses short keys', () => {
    expect(checkSigningKey('short')).toContain('at least 32');
    expect(checkSigningKey(key)).toBeUndefined();
  });
});
