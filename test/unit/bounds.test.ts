import { EventEmitter } from 'node:events';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AmqpPublisher, PublishRefusedError, refusalOf } from '../../shared/broker/amqp-publisher.js';
import { maxCommandBytes, maxMessageBytes, parseCommandMessage, parseWorkMessage } from '../../shared/broker/messages.js';
import { maxTimerMs } from '../../shared/config/duration.js';
import { names } from '../../shared/config/names.js';
import { JobsFileError } from '../../shared/errors.js';
import type { Logger } from '../../shared/observe/logger.js';
import { loadRunConfig } from '../../tasker/config.js';
import { attemptBytesBudget, createCommandPublisher } from '../../tasker/distributed/command-publisher.js';
import { createPhaseBundler } from '../../tasker/distributed/phase-dispatch.js';
import { createLineAssembler } from '../../tasker/jobs/jobs-file.js';
import type { PhaseSpec } from '../../tasker/jobs/plan.js';
import { loadWorkerConfig } from '../../worker/config.js';
import { problemsOf } from '../helpers/config-problems.js';

/**
 * Bounded input (issue 25, point 5): durations Node's timers cannot hold are refused where they
 * are configured; a command too large for a message is refused where it is read; bundles are cut
 * by bytes, so no message the tasker publishes exceeds maxMessageBytes; and a message the broker
 * refuses fails its publish instead of being sent again for ever.
 */

describe('durations above what timers hold (2^31-1 ms)', () => {
  it('are refused, naming the flag or the variable', () => {
    expect(problemsOf(() => loadRunConfig(['j'], { timeout: '30d' }, {}, '/'))).toEqual([
      `--timeout must be at most 24d (Node's timers hold at most 2^31-1 ms, 24.8 days), got "30d"; give a shorter duration`,
    ]);
    expect(problemsOf(() => loadRunConfig(['j'], {}, { TASKER_STALL_WARNING: '25d', TASKER_REPORT_INTERVAL: '600h' }, '/'))).toEqual([
      expect.stringMatching(/^TASKER_REPORT_INTERVAL must be at most 24d/),
      expect.stringMatching(/^TASKER_STALL_WARNING must be at most 24d/),
    ]);
    const worker = { AMQP_URL: 'amqp://localhost', TASKER_SIGNING: 'off' };
    expect(problemsOf(() => loadWorkerConfig({}, { ...worker, WORKER_DRAIN_TIMEOUT: '30d', TASKER_LEASE_TTL: '2592000' }, '/'))).toEqual([
      expect.stringMatching(/^WORKER_DRAIN_TIMEOUT must be at most 24d/),
      expect.stringMatching(/^TASKER_LEASE_TTL must be at most 24d/),
    ]);
    expect(problemsOf(() => loadWorkerConfig({ exitWhenIdle: '25d' }, worker, '/'))).toEqual([expect.stringMatching(/^--exit-when-idle must be at most 24d/)]);
  });

  it('up to the limit, are accepted', () => {
    expect(loadRunConfig(['j'], { timeout: '24d', killGrace: `${maxTimerMs}ms` }, {}, '/')).toMatchObject({ timeoutMs: 24 * 86_400_000, killGraceMs: maxTimerMs });
  });

  it('in a message, make it invalid (a worker dead-letters it rather than time its command out at once)', () => {
    const message = { v: 1, kind: 'command', runId: 'r1', phase: 'p', phaseIndex: 1, id: 'f1-L1', attempt: 1, command: 'true', file: 'j', line: 1, killGraceMs: 1000, replyTo: 'q' };
    const parse = (fields: Record<string, unknown>) => parseCommandMessage(Buffer.from(JSON.stringify({ ...message, ...fields })));
    expect(parse({ timeoutMs: maxTimerMs }).ok).toBe(true);
    expect(parse({ timeoutMs: maxTimerMs + 1 })).toEqual({ ok: false, problem: `timeoutMs must be null or a whole number of ms from 1 to ${maxTimerMs}` });
    expect(parse({ timeoutMs: null, killGraceMs: 30 * 86_400_000 })).toEqual({ ok: false, problem: `killGraceMs must be a whole number of ms from 0 to ${maxTimerMs}` });
  });
});

describe('a command too large for a message', () => {
  const thrown = (run: () => unknown): JobsFileError => {
    try {
      run();
    } catch (error) {
      return error as JobsFileError;
    }
    throw new Error('expected a JobsFileError');
  };

  it('is an input error naming its file and line, measured as JSON in the message', () => {
    const assembler = createLineAssembler('big.sh');
    expect(assembler.push(1, 'echo fine')).toBeDefined();
    // 200 KiB of text, 1.2 MiB once its control characters are escaped (\u0001: 6 bytes each).
    const error = thrown(() => assembler.push(2, `echo '${'\u0001'.repeat(200 * 1024)}'`));
    expect(error).toBeInstanceOf(JobsFileError);
    expect([error.file, error.line, error.exitCode]).toEqual(['big.sh', 2, 2]);
    expect(error.message).toMatch(/^big\.sh:2: command takes 1228\d{3} bytes in its message to the workers \(as JSON: quotes, backslashes and control characters escaped\), more than the 1048576 \(1 MiB\) a command may; put large data in a file/);
  });

  it('is named by the line it starts on when continuation lines make it too large', () => {
    const assembler = createLineAssembler('cont.sh');
    expect(assembler.push(1, `echo ${'"'.repeat(300 * 1024)} \\`)).toBeUndefined();
    expect(assembler.push(2, `${'"'.repeat(300 * 1024)} \\`)).toBeUndefined();
    const error = thrown(() => assembler.push(3, 'done'));
    expect([error.line, /command takes \d+ bytes/.test(error.message)]).toEqual([1, true]);
  });

  it('fits when it is just 1 MiB in its message', () => {
    const command = `echo ${'k'.repeat(maxCommandBytes - 7)}`;
    expect(Buffer.byteLength(JSON.stringify(command))).toBe(maxCommandBytes);
    expect(createLineAssembler('ok.sh').push(1, command)).toEqual({ kind: 'command', line: 1, text: command });
  });
});

const phase = { index: 2, name: 'sims', runsOn: 'workers', pool: 'default', fileIndex: 0, commandCount: 60 } as PhaseSpec;
const ns = names('tb');
const messageParts = { runId: 'r1', timeoutMs: 3_600_000, killGraceMs: 10_000, names: ns, upload: undefined, origin: { workdir: '/work', token: 'a'.repeat(32) } };
const silent = { warn: () => undefined, info: () => undefined, debug: () => undefined, error: () => undefined } as unknown as Logger;

/** The tasker's publishing path with a fake broker: what it sends, body by body. */
function publishingPath(fixedSize: number | undefined) {
  const bodies: Buffer[] = [];
  const session = { publish: async (_exchange: string, _key: string, body: Buffer) => void bodies.push(body), redeclare: () => Promise.resolve() };
  const store = { markPublished: () => Promise.resolve() };
  const publish = createCommandPublisher({ ...messageParts, session, store, signingKey: 'k'.repeat(32), logger: silent });
  const bundler = createPhaseBundler(phase, { publish, fixedSize, lanes: () => 4, probeMs: 60_000, maxBytes: attemptBytesBudget(phase, messageParts) });
  return { bundler, bodies };
}

const bigCommand = (line: number, bytes: number) => ({ id: `f1-L${line}`, phase: 'sims', phaseIndex: 2, command: `echo ${String(line).padEnd(bytes, 'x')}`, file: 'jobs.sh', line });

describe('bundles bounded in bytes', () => {
  it('a fixed size of 100 with commands of 300 KiB: every message stays within 4 MiB, every attempt goes once', async () => {
    const { bundler, bodies } = publishingPath(100);
    await Promise.all(Array.from({ length: 60 }, (_, i) => bundler.add(bigCommand(i + 1, 300 * 1024), 1)));
    expect(Math.max(...bodies.map((body) => body.length))).toBeLessThanOrEqual(maxMessageBytes);
    const attempts = bodies.flatMap((body) => {
      const parsed = parseWorkMessage(body);
      if (!parsed.ok) throw new Error(parsed.problem);
      return parsed.value.attempts.map((attempt) => attempt.id);
    });
    expect(attempts).toEqual(Array.from({ length: 60 }, (_, i) => `f1-L${i + 1}`));
    // 13 commands of 300 KiB fill 4 MiB: the bytes cut the bundles, not the count.
    expect(bodies.map((body) => parseWorkMessage(body).ok && (JSON.parse(body.toString()) as { commands: unknown[] }).commands.length)).toEqual([13, 13, 13, 13, 8]);
  });

  it('adaptive bundling of short commands of 1 MiB each: at most 3 to a message, each message under the limit', async () => {
    const { bundler, bodies } = publishingPath(undefined);
    const added = Array.from({ length: 40 }, (_, i) => bundler.add(bigCommand(i + 1, maxCommandBytes - 2), 1));
    bundler.observe(5); // short commands: bundles of up to 100 by count
    await Promise.all(added);
    const counts = bodies.map((body) => {
      const parsed = parseWorkMessage(body);
      return parsed.ok ? parsed.value.attempts.length : 0;
    });
    expect(counts.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.max(...counts)).toBe(3);
    expect(Math.max(...bodies.map((body) => body.length))).toBeLessThanOrEqual(maxMessageBytes);
  });

  it('a message that would still be too large (its envelope) is refused before it is sent', async () => {
    const bodies: Buffer[] = [];
    const session = { publish: async (_e: string, _k: string, body: Buffer) => void bodies.push(body), redeclare: () => Promise.resolve() };
    const upload = { bucket: 'b', prefix: 'p', patterns: Array.from({ length: 5000 }, (_, i) => `output/${String(i).padEnd(1000, 'y')}/*.json`) };
    const publish = createCommandPublisher({ ...messageParts, upload, session, store: { markPublished: () => Promise.resolve() }, signingKey: undefined, logger: silent });
    await expect(publish(phase, [{ command: bigCommand(1, 100), attempt: 1 }])).rejects.toThrow(/the message of command f1-L1 would take \d+ bytes, more than the 4194304 \(4 MiB\)/);
    expect(bodies).toEqual([]);
  });
});

/** A confirm channel the broker closes on the message of `refusedBytes`, as RabbitMQ does for one over max_message_size. */
function refusingChannel(refusedBytes: number, code = 406): ConfirmChannel & { sent: number } {
  const channel = new EventEmitter() as EventEmitter & { sent: number; publish: unknown };
  channel.sent = 0;
  channel.publish = (_exchange: string, _key: string, content: Buffer, _options: unknown, callback: (error: unknown) => void) => {
    channel.sent++;
    setImmediate(() => {
      if (content.length !== refusedBytes) return callback(null);
      const reason = code === 406 ? `PRECONDITION_FAILED - message size ${content.length} is larger than configured max size 1000` : 'ACCESS_REFUSED - write access to exchange \'tb\' in vhost \'/\' refused for user \'worker\'';
      const error = Object.assign(new Error(`Channel closed by server: ${code} (${code === 406 ? 'PRECONDITION-FAILED' : 'ACCESS-REFUSED'}) with message "${reason}"`), { code });
      channel.emit('error', error);
      channel.emit('close');
      callback(new Error('channel closed'));
    });
    return true;
  };
  return channel as unknown as ConfirmChannel & { sent: number };
}

describe('a publish the broker refuses', () => {
  async function publishThrough(channels: ConfirmChannel[], content: Buffer, exchange = 'tb'): Promise<unknown> {
    const model = { createConfirmChannel: () => Promise.resolve(channels.shift()) } as unknown as ChannelModel;
    const publisher = new AmqpPublisher({ connection: { current: model, closing: false, whenConnected: () => Promise.resolve() }, logger: silent, maxUnconfirmed: 8 });
    return publisher.publish(exchange, 'run.r1', content, undefined).then(
      () => 'confirmed',
      (error: unknown) => error,
    );
  }

  it('over max_message_size: rejects at once with the broker’s reason, not sent again', async () => {
    const channel = refusingChannel(2000);
    const error = await publishThrough([channel, refusingChannel(2000)], Buffer.alloc(2000));
    expect(error).toBeInstanceOf(PublishRefusedError);
    expect((error as Error).message).toBe(
      'RabbitMQ refused a message of 2000 bytes to exchange "tb" (routing key run.r1): PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000. ' +
        "Sending it again cannot help: raise RabbitMQ's max_message_size above it, or send less in one message",
    );
    expect(channel.sent).toBe(1);
  });

  it('without write permission: rejects, saying which permission is missing', async () => {
    const error = await publishThrough([refusingChannel(5, 403)], Buffer.alloc(5));
    expect(error).toBeInstanceOf(PublishRefusedError);
    expect((error as Error).message).toMatch(/ACCESS_REFUSED - write access to exchange 'tb'.*give it write permission on that exchange/);
  });

  it('only the refused message fails: another one its channel took down with it is sent again', () => {
    const reason = { code: 406, message: 'Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000"' };
    expect(refusalOf(reason, 2000, 'tb')).toBe('PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000');
    expect(refusalOf(reason, 10, 'tb')).toBeUndefined();
    const denied = { code: 403, message: 'Channel closed by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - write access to exchange \'tb\' in vhost \'/\' refused for user \'worker\'"' };
    expect(refusalOf(denied, 10, 'tb')).toMatch(/^ACCESS_REFUSED - write access to exchange 'tb'/);
    expect(refusalOf(denied, 10, '')).toBeUndefined(); // a result to amq.default, on the channel another publish closed
    expect(refusalOf({ code: 320, message: 'Connection closed: 320 (CONNECTION-FORCED)' }, 10, 'tb')).toBeUndefined();
    expect(refusalOf(undefined, 10, 'tb')).toBeUndefined();
  });
});
