import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import amqp from 'amqplib';
import { parse } from 'yaml';
import type { Broker } from './broker.js';
import { repoRoot } from './cli.js';
import { engineRun, execPrefix, type Engine } from './container-engine.js';
import { rabbitmqTrixieImage, rabbitmqUser } from './standin-images.js';

/**
 * A RabbitMQ 4 of the tests' own, in a container, never the machine's: the image k8s/rabbitmq.yml
 * pins, through testcontainers, where Docker runs; else Debian trixie's rabbitmq-server (4.0.x)
 * in a podman container. On the host's network (no bridge networking here), on free ports of
 * its own: AMQP, Erlang distribution and epmd, with a node name of its own, so its rabbitmqctl
 * can only reach it. No management plugin.
 */

export interface StartedRabbitmq {
  amqpUrl: string;
  broker: Broker;
  stop(): Promise<void>;
}

/** The RabbitMQ image the deployment pins (spec.image of k8s/rabbitmq.yml). */
export function pinnedRabbitmqImage(): string {
  const doc = parse(readFileSync(join(repoRoot, 'k8s', 'rabbitmq.yml'), 'utf8')) as { spec?: { image?: string } };
  const image = doc.spec?.image;
  if (image === undefined) throw new Error('k8s/rabbitmq.yml pins no spec.image: the RabbitMQ 4 run tests that image');
  return image;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForAmqp(url: string, timeoutMs: number, logs: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const connection = await amqp.connect(url);
      await connection.close();
      return;
    } catch (error) {
      last = error; // not up yet: try again
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  throw new Error(`RabbitMQ 4 did not accept ${url.replace(/:[^:@/]*@/, ':***@')} within ${timeoutMs} ms (${String(last)}):\n${await logs()}`);
}

async function startInPodman(engine: Engine): Promise<StartedRabbitmq> {
  const image = await rabbitmqTrixieImage(engine);
  const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  if (amqpPort === 5672) throw new Error('refusing to start the RabbitMQ 4 container on port 5672 (the local broker\'s)');
  const name = `tasker-test-rabbitmq4-${randomBytes(4).toString('hex')}`;
  const env = { RABBITMQ_NODE_PORT: amqpPort, RABBITMQ_DIST_PORT: distPort, ERL_EPMD_PORT: epmdPort, RABBITMQ_NODENAME: `${name}@localhost` };
  const envArgs = Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]);
  await engineRun(engine, ['run', '-d', '--name', name, '--network', 'host', ...envArgs, image]);
  const stop = async (): Promise<void> => void (await engineRun(engine, ['rm', '-f', name]).catch(() => undefined));
  const amqpUrl = `amqp://${rabbitmqUser.name}:${rabbitmqUser.password}@127.0.0.1:${amqpPort}`;
  try {
    await waitForAmqp(amqpUrl, 90_000, () => engineRun(engine, ['logs', name]).catch((error: unknown) => String(error)));
  } catch (error) {
    await stop();
    throw error;
  }
  const version = (await engineRun(engine, ['exec', name, 'rabbitmqctl', 'version'])).trim();
  const broker: Broker = { name: `RabbitMQ ${version} in ${engine.name} container ${name} (port ${amqpPort})`, rabbitmqctl: [...execPrefix(engine, name), 'rabbitmqctl'], env: engine.env, startedByTests: true };
  return { amqpUrl, broker, stop };
}

async function startWithTestcontainers(engine: Engine): Promise<StartedRabbitmq> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const image = pinnedRabbitmqImage();
  const container = await new GenericContainer(image)
    .withEnvironment({ RABBITMQ_DEFAULT_USER: rabbitmqUser.name, RABBITMQ_DEFAULT_PASS: rabbitmqUser.password })
    .withExposedPorts(5672)
    .withWaitStrategy(Wait.forLogMessage('Server startup complete'))
    .start();
  const amqpUrl = `amqp://${rabbitmqUser.name}:${rabbitmqUser.password}@${container.getHost()}:${container.getMappedPort(5672)}`;
  const broker: Broker = { name: `${image} in docker container ${container.getName()}`, rabbitmqctl: [...execPrefix(engine, container.getId()), 'rabbitmqctl'], env: engine.env, startedByTests: true };
  return { amqpUrl, broker, stop: async () => void (await container.stop()) };
}

/** Starts a RabbitMQ 4 for the tests; stop() removes it. */
export function startRabbitmq4(engine: Engine): Promise<StartedRabbitmq> {
  return engine.name === 'docker' ? startWithTestcontainers(engine) : startInPodman(engine);
}
