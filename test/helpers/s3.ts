import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { S3Service } from './global-setup.js';

/** Test-side access to the S3-compatible server: buckets, listings, object checksums, a flaky proxy. */

export function s3Client(s3: S3Service): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A fresh bucket for one test. */
export async function newBucket(client: S3Client): Promise<string> {
  const bucket = `t-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Environment that points a tasker or worker at this server. */
export function s3Env(s3: S3Service, extra: Record<string, string> = {}): Record<string, string> {
  return {
    S3_ENDPOINT_URL: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
    ...extra,
  };
}

export async function listKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys.sort();
}

/** SHA-256 of an object's bytes, read back from the server. */
export async function objectSha256(client: S3Client, bucket: string, key: string): Promise<string> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface FlakyProxy {
  endpoint: string;
  /** Requests answered with an error instead of being forwarded. */
  failed(): number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the S3 server that answers some writes (PUT, POST) with an error:
 * 503 SlowDown as an overloaded S3 does, or 500 InternalError. `failEvery`: every n-th write
 * fails; 1 fails them all.
 */
export async function startFlakyProxy(target: string, failEvery: number, options: { status?: 500 | 503; path?: RegExp } = {}): Promise<FlakyProxy> {
  const status = options.status ?? 503;
  const upstream = new URL(target);
  let writes = 0;
  let failed = 0;
  const server: Server = createServer((req, res) => {
    const isWrite = (req.method === 'PUT' || req.method === 'POST') && (options.path === undefined || options.path.test(req.url ?? ''));
    if (isWrite && ++writes % failEvery === 0) {
      failed++;
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected by the test proxy</Message></Error>`);
      });
      return;
    }
    // Headers go through unchanged, Host included: it is part of the request's signature.
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    failed: () => failed,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
