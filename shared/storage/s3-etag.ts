import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface LocalEtags {
  /** MD5 of the whole file: the ETag of an object sent in one request. */
  whole: string;
  /** MD5 of the parts' MD5s, `-N`: the ETag of a multipart object sent with the same part size. */
  multipart: string;
  bytes: number;
}

/** Both ETags a file's object may have, computed in one read of the file. */
export async function localEtags(path: string, partSizeBytes: number): Promise<LocalEtags> {
  const whole = createHash('md5');
  const parts: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSizeBytes - inPart, chunk.length - offset);
      part.update(chunk.subarray(offset, offset + take));
      inPart += take;
      offset += take;
      if (inPart === partSizeBytes) {
        parts.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0 || parts.length === 0) parts.push(part.digest());
  const multipart = `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
  return { whole: whole.digest('hex'), multipart, bytes };
}
