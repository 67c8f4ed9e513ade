import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { localBroker, type Broker } from './broker.js';

/**
 * Finds the real services the integration tests talk to, in this order: explicit env vars
 * (AMQP_URL, REDIS_URL); else the local services at their default ports; else containers
 * started with testcontainers (for a contributor with Docker); else fail, saying what to start.
 * Never skips silently.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    /** The broker at amqpUrl, for the tests that change it (through its own rabbitmqctl). */
    broker: Broker;
    redisUrl: string;
    s3: S3Service;
  }
}

/** An S3-compatible endpoint and credentials that can create buckets. */
export interface S3Service {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Which server it is: tests that depend on a server's quirks say so. */
  kind: 'env' | 'minio' | 's3rver';
}

/**
 * S3: S3_ENDPOINT_URL (+ AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) when set; else MinIO in a
 * container when Docker is there; else s3rver, an S3-compatible HTTP server from npm, in this
 * process. Its credentials are distinctive so the secrets tests can grep for them.
 */
async function findS3(): Promise<S3Service> {
  // The SDK's notice that its 2027 releases need Node 22; the tools silence it the same way.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const endpoint = process.env['S3_ENDPOINT_URL'];
  if (endpoint !== undefined && endpoint !== '') {
    const accessKeyId = process.env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = process.env['AWS_SECRET_ACCESS_KEY'];
    if (accessKeyId === undefined || secretAccessKey === undefined) throw new Error('S3_ENDPOINT_URL is set for the tests: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY too');
    return { endpoint, accessKeyId, secretAccessKey, region: process.env['AWS_REGION'] ?? 'us-east-1', kind: 'env' };
  }
  const accessKeyId = 'taskertestkey';
  const secretAccessKey = 'tasker-test-s3-secret-9f2c71';
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const minio = await new GenericContainer('minio/minio:latest')
      .withCommand(['server', '/data'])
      .withEnvironment({ MINIO_ROOT_USER: accessKeyId, MINIO_ROOT_PASSWORD: secretAccessKey })
      .withExposedPorts(9000)
      .withWaitStrategy(Wait.forHttp('/minio/health/ready', 9000))
      .start();
    stops.push(() => minio.stop());
    return { endpoint: `http://${minio.getHost()}:${minio.getMappedPort(9000)}`, accessKeyId, secretAccessKey, region: 'us-east-1', kind: 'minio' };
  }
  const directory = await mkdtemp(join(tmpdir(), 'tasker-s3rver-'));
  const { default: S3rver } = await import('s3rver');
  // s3rver knows one fixed key pair; register ours on its dummy account (checked on every request).
  const require = createRequire(import.meta.url);
  const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
  DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const address = await server.run();
  stops.push(async () => {
    await server.close();
    await rm(directory, { recursive: true, force: true });
  });
  return { endpoint: `http://127.0.0.1:${address.port}`, accessKeyId, secretAccessKey, region: 'us-east-1', kind: 's3rver' };
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
  // AMQP_URL or the local port: a broker this machine's rabbitmqctl drives.
  let broker = localBroker;
  const missing: string[] = [];
  if (amqpUrl === undefined && (await portOpen(5672))) amqpUrl = 'amqp://guest:guest@127.0.0.1:5672';
  if (redisUrl === undefined && (await portOpen(6379))) redisUrl = 'redis://127.0.0.1:6379';
  if ((amqpUrl === undefined || redisUrl === undefined) && (await dockerAvailable())) {
    const { GenericContainer, Wait } = await import('testcontainers');
    if (amqpUrl === undefined) {
      const rabbit = await new GenericContainer('rabbitmq:4-management').withExposedPorts(5672).withWaitStrategy(Wait.forLogMessage('Server startup complete')).start();
      stops.push(() => rabbit.stop());
      amqpUrl = `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`;
      broker = { name: `rabbitmq:4-management in docker container ${rabbit.getName()}`, rabbitmqctl: ['docker', 'exec', rabbit.getId(), 'rabbitmqctl'], env: {}, startedByTests: true };
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
  project.provide('s3', await findS3());
  project.provide('amqpUrl', amqpUrl!);
  project.provide('broker', broker);
  project.provide('redisUrl', redisUrl!);
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
