import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkSigningKey, signatureHeader, signatureHeaders, signatureOf, signMessage, verifyMessage, type SignedFor } from '../../shared/broker/signing.js';

const key = 'k'.repeat(40);
const body = Buffer.from('{"v":1,"kind":"command","command":"echo hi"}');
const work: SignedFor = { purpose: 'work', destination: 'run.r1' };

describe('signing', () => {
  it('verifies what was signed with the same key, for the same purpose and destination', () => {
    expect(verifyMessage(key, body, { [signatureHeader]: signMessage(key, body, work) }, work)).toBeUndefined();
    // amqplib hands string headers over as Buffers in some paths
    expect(verifyMessage(key, body, { [signatureHeader]: Buffer.from(signMessage(key, body, work)) }, work)).toBeUndefined();
  });

  it('signs purpose, destination and body: the HMAC of "purpose\\ndestination\\nbody", scheme v2', () => {
    const expected = createHmac('sha256', key).update(`work\nrun.r1\n${body.toString()}`).digest('hex');
    expect(signMessage(key, body, work)).toBe(`hmac-sha256-v2=${expected}`);
  });

  it('refuses a signed message replayed for another purpose or destination', () => {
    const headers = { [signatureHeader]: signMessage(key, body, work) };
    // Another pool's queue, another run's key, the run's result queue: none verifies.
    expect(verifyMessage(key, body, headers, { purpose: 'work', destination: 'pool.gpu.run.r1' })).toMatch(/does not verify as work for pool\.gpu\.run\.r1/);
    expect(verifyMessage(key, body, headers, { purpose: 'work', destination: 'run.r2' })).toContain('does not verify');
    expect(verifyMessage(key, body, headers, { purpose: 'result', destination: 'run.r1' })).toMatch(/does not verify as result/);
    expect(verifyMessage(key, body, headers, { purpose: 'result', destination: 'tasker.run.r1.done' })).toContain('does not verify');
    // A result signed for one run's queue does not verify on another's.
    const result = { purpose: 'result', destination: 'tasker.run.r1.done' } as const;
    expect(verifyMessage(key, body, signatureHeaders(key, body, result), { ...result, destination: 'tasker.run.r2.done' })).toContain('does not verify');
  });

  it('keeps destination and body apart: a routing key with a newline is refused, not verified', () => {
    // Signed for run.a with body "x\ny": the same bytes as destination "run.a\nx" with body "y".
    const one = { [signatureHeader]: signMessage(key, Buffer.from('x\ny'), { purpose: 'work', destination: 'run.a' }) };
    expect(verifyMessage(key, Buffer.from('y'), one, { purpose: 'work', destination: 'run.a\nx' })).toMatch(/destination with a newline is none of ours/);
    expect(() => signMessage(key, body, { purpose: 'work', destination: 'run.a\nb' })).toThrow(/newline/);
  });

  it('refuses the old scheme (body only) with a clear reason', () => {
    const old = `hmac-sha256-v1=${createHmac('sha256', key).update(body).digest('hex')}`;
    expect(verifyMessage(key, body, { [signatureHeader]: old }, work)).toMatch(/old scheme \(hmac-sha256-v1.*upgrade/);
  });

  it('refuses unsigned, tampered, foreign-key and malformed signatures, without echoing a digest', () => {
    expect(verifyMessage(key, body, {}, work)).toBe('unsigned message');
    const tampered = Buffer.from(body.toString().replace('echo hi', 'rm -rf /'));
    expect(verifyMessage(key, tampered, { [signatureHeader]: signMessage(key, body, work) }, work)).toContain('does not verify');
    expect(verifyMessage(key, body, { [signatureHeader]: signMessage('x'.repeat(40), body, work) }, work)).toContain('does not verify');
    expect(verifyMessage(key, body, { [signatureHeader]: 'sha1=abc' }, work)).toContain('unknown format');
    expect(verifyMessage(key, body, { [signatureHeader]: 42 }, work)).toContain('unknown format');
    expect(verifyMessage(key, tampered, { [signatureHeader]: signMessage(key, body, work) }, work)).not.toMatch(/[0-9a-f]{64}/);
  });

  it('signs through headers only when there is a key; tells whether a message carries a signature', () => {
    expect(signatureHeaders(undefined, body, work)).toEqual({});
    expect(verifyMessage(key, body, signatureHeaders(key, body, work), work)).toBeUndefined();
    expect(signatureOf({})).toBeUndefined();
    expect(signatureOf(signatureHeaders(key, body, work))).toMatch(/^hmac-sha256-v2=/);
    expect(signatureOf({ [signatureHeader]: Buffer.from('hmac-sha256-v2=ab') })).toBe('hmac-sha256-v2=ab');
  });

  it('refuses short keys', () => {
    expect(checkSigningKey('short')).toContain('at least 32');
    expect(checkSigningKey(key)).toBeUndefined();
  });
});
