// The bare baseline of bench/distributed.sh: what RabbitMQ itself costs per command. A publisher
// and consumers on a plain durable queue, each consumer running the line with `sh -c`, acking,
// replying; nothing else (no state, no logs, no retries), like the Python tasker/worker pair of
// asreview-cloud that we replace.
//
//   node bench/bare-peer.mjs consume QUEUE            # a consumer (prefetch 1), until killed
//   node bench/bare-peer.mjs publish QUEUE JOBS_FILE  # publishes every line, waits for every reply,
//                                                     # prints "<commands> <seconds>"
import { spawn } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import amqp from 'amqplib';

const [mode, queue, jobsFile] = process.argv.slice(2);
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
// noDelay as our own connections (shared/broker/amqp-connection.ts): without it each small publish waits on a delayed ACK.
const connection = await amqp.connect(url, { noDelay: true });

if (mode === 'consume') {
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true });
  await channel.prefetch(1);
  await channel.consume(queue, (message) => {
    if (message === null) return; // the queue was deleted: the publisher is done
    const child = spawn('sh', ['-c', message.content.toString()], { stdio: 'ignore' });
    child.on('close', (code) => {
      channel.sendToQueue(message.properties.replyTo, Buffer.from(String(code)));
      channel.ack(message);
    });
  });
  process.on('SIGTERM', () => connection.close().finally(() => process.exit(0)));
} else if (mode === 'publish') {
  const lines = readFileSync(jobsFile, 'utf8').split('\n').filter((line) => line.trim() !== '');
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  const replies = (await channel.assertQueue('', { exclusive: true })).queue;
  let left = lines.length;
  const started = process.hrtime.bigint();
  const done = new Promise((resolve) => {
    channel.consume(replies, () => {
      if (--left === 0) resolve();
    }, { noAck: true });
  });
  for (const line of lines) {
    if (!channel.sendToQueue(queue, Buffer.from(line), { persistent: true, replyTo: replies })) await new Promise((resolve) => channel.once('drain', resolve));
  }
  await channel.waitForConfirms();
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${lines.length} ${seconds.toFixed(3)}`);
  await channel.deleteQueue(queue);
  await connection.close();
} else {
  console.error('usage: bare-peer.mjs consume QUEUE | publish QUEUE JOBS_FILE');
  process.exit(2);
}
