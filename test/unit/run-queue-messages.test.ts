import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../shared/broker/amqp-session.js';
import { encodeMessage, resultMessage } from '../../shared/broker/messages.js';
import { signatureHeaders, type SignedFor } from '../../shared/broker/signing.js';
import { names } from '../../shared/config/names.js';
import { runLayout } from '../../shared/run-dir/run-layout.js';
import type { RunStanding } from '../../shared/state/run-store.js';
import type { ResultRecord } from '../../shared/state/results.js';
import { deadLetterReason } from '../../tasker/distributed/dead-letters.js';
import { createRunQueueHandler } from '../../tasker/distributed/run-queue-messages.js';

/**
 * The tasker's run queue: a result counts only when signed as a result for this run's queue; a
 * command counts as dead-lettered only when it came through the dead-letter exchange, signed as
 * work for the key it keeps. A signed command re-published onto the queue is ignored.
 */

const key = 'k'.repeat(40);
const ns = names('t');
const now = new Date().toISOString();
const record: ResultRecord = { id: 'f1-L1', phase: 'p', phaseIndex: 1, command: 'true', file: 'jobs.sh', line: 1, attempt: 1, outcome: 'succeeded', exitCode: 0, signal: null, startedAt: now, finishedAt: now, durationMs: 1, worker: 'w', log: 'x' };
const command = { v: 1, kind: 'command', runId: 'r1', phase: 'p', phaseIndex: 1, id: 'f1-L1', attempt: 1, command: 'true', file: 'jobs.sh', line: 1, timeoutMs: null, killGraceMs: 1000, replyTo: ns.runQueue('r1') };

function handlerWith(signingKey: string | undefined, standing: RunStanding = 'live') {
  const delivered: ResultRecord[] = [];
  const handler = createRunQueueHandler({
    runId: 'r1',
    layout: runLayout('/w', 'r1'),
    logger: pino({ level: 'silent' }),
    store: { latestResults: async () => new Map(), runStanding: async () => standing },
    signingKey,
    names: ns,
    deliver: async (one) => {
      delivered.push(one);
      return 'ack';
    },
  });
  return { handler, delivered };
}

function delivery(body: Buffer, signedFor: SignedFor | undefined, where: { exchange: string; routingKey: string }, headers: Record<string, unknown> = {}): Delivery {
  return { content: body, headers: { ...headers, ...(signedFor === undefined ? {} : signatureHeaders(key, body, signedFor)) }, redelivered: false, ...where };
}

const result = encodeMessage(resultMessage('r1', [record]));
const work = Buffer.from(JSON.stringify(command));
const onRunQueue = { exchange: '', routingKey: ns.runQueue('r1') };
const deadLettered = { exchange: ns.deadExchange, routingKey: 'run.r1' };
const rejected = { 'x-death': [{ reason: 'rejected' }] };

describe('the run queue', () => {
  it('counts a result signed as a result for this run queue', async () => {
    const f = handlerWith(key);
    expect(await f.handler(delivery(result, { purpose: 'result', destination: ns.runQueue('r1') }, onRunQueue))).toBe('ack');
    expect(f.delivered).toEqual([record]);
  });

  it('ignores a result signed for another queue or as work (a replayed message)', async () => {
    const f = handlerWith(key);
    await f.handler(delivery(result, { purpose: 'result', destination: ns.runQueue('r2') }, onRunQueue));
    await f.handler(delivery(result, { purpose: 'work', destination: ns.runQueue('r1') }, onRunQueue));
    await f.handler(delivery(result, undefined, onRunQueue));
    expect(f.delivered).toEqual([]);
  });

  it('counts a dead-lettered command that came through the dead-letter exchange, signed as work for the key it keeps', async () => {
    const f = handlerWith(key);
    expect(await f.handler(delivery(work, { purpose: 'work', destination: 'run.r1' }, deadLettered, rejected))).toBe('ack');
    expect(f.delivered.map((one) => [one.id, one.outcome])).toEqual([['f1-L1', 'dead-lettered']]);
  });

  it('ignores a signed command re-published onto the run queue: it was not dead-lettered', async () => {
    const f = handlerWith(key);
    // Straight into the queue (default exchange), with the signature it had on the work queue.
    expect(await f.handler(delivery(work, { purpose: 'work', destination: 'run.r1' }, onRunQueue))).toBe('ack');
    // Through the dead-letter exchange, but under another key than it was signed for.
    await f.handler(delivery(work, { purpose: 'work', destination: 'run.r1' }, { exchange: ns.deadExchange, routingKey: 'pool.gpu.run.r1' }, rejected));
    expect(f.delivered).toEqual([]);
  });

  it('without a key: results are taken as they come, a command only from the dead-letter exchange', async () => {
    const f = handlerWith(undefined);
    await f.handler(delivery(result, undefined, onRunQueue));
    await f.handler(delivery(work, undefined, onRunQueue));
    expect(f.delivered).toEqual([record]);
    await f.handler(delivery(work, undefined, deadLettered, rejected));
    expect(f.delivered).toHaveLength(2);
  });

  it('says why a worker refused a command: the run not live in Redis, or the key on one side only', async () => {
    const f = handlerWith(key, 'unknown');
    await f.handler(delivery(work, { purpose: 'work', destination: 'run.r1' }, deadLettered, rejected));
    expect(f.delivered[0]?.reason).toMatch(/Redis holds this run as unknown/);
    expect(deadLetterReason(rejected, key, undefined)).toMatch(/TASKER_SIGNING_KEY.*TASKER_SIGNING=off refuses signed commands/);
    expect(deadLetterReason(rejected, undefined, undefined)).toMatch(/this tasker runs unsigned \(TASKER_SIGNING=off\) and the workers have a TASKER_SIGNING_KEY/);
  });
});
