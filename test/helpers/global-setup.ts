import { createConnection } from 'node:net';
import type { TestProject } from 'vitest/node';

/**
 * Finds the real services the integration tests talk to, in this order: explicit env vars
 * (AMQP_URL, REDIS_URL); else the local services at their default ports; else containers
 * started with testcontainers (for a contributor with Docker); else fail, saying what to start.
 * Never skips silently.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    redisUrl: string;
  }
}

function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function dockerAvailable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false; // no Docker engine: the caller reports what to start instead
  }
}

const stops: (() => Promise<unknown>)[] = [];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let amqpUrl = process.env['AMQP_URL'];
  let redisUrl = process.env['REDIS_URL'];
  const missing: string[] = [];
  if (amqpUrl === undefined && (await portOpen(5672))) amqpUrl = 'amqp://guest:guest@127.0.0.1:5672';
  if (redisUrl === undefined && (await portOpen(6379))) redisUrl = 'redis://127.0.0.1:6379';
  if ((amqpUrl === undefined || redisUrl === undefined) && (await dockerAvailable())) {
    const { GenericContainer, Wait } = await import('testcontainers');
    if (amqpUrl === undefined) {
      const rabbit = await new GenericContainer('rabbitmq:4-management').withExposedPorts(5672).withWaitStrategy(Wait.forLogMessage('Server startup complete')).start();
      stops.push(() => rabbit.stop());
      amqpUrl = `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`;
    }
    if (redisUrl === undefined) {
      const redis = await new GenericContainer('redis:7').withExposedPorts(6379).start();
      stops.push(() => redis.stop());
      redisUrl = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`;
    }
  }
  if (amqpUrl === undefined) missing.push('RabbitMQ (start rabbitmq-server, or set AMQP_URL)');
  if (redisUrl === undefined) missing.push('Redis (start redis-server, or set REDIS_URL)');
  if (missing.length > 0) {
    throw new Error(`The integration tests need ${missing.join(' and ')}. No Docker engine was found to start them either.`);
  }
  project.provide('amqpUrl', amqpUrl!);
  project.provide('redisUrl', redisUrl!);
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
