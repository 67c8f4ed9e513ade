import type { Logger } from '../../shared/observe/logger.js';
import type { S3Connection } from '../../shared/storage/s3-config.js';
import type { S3Store } from '../../shared/storage/s3-store.js';

/** The S3 store, created on first use. */
export interface S3OnDemand {
  get(): Promise<S3Store>;
  /** Closes the store if it was ever asked for. */
  close(): Promise<void>;
}

// The AWS SDK is loaded on the first message that asks for uploads: most runs never do.
export function createS3OnDemand(connection: S3Connection, logger: Logger): S3OnDemand {
  let s3: Promise<S3Store> | undefined;
  return {
    get() {
      s3 ??= import('../../shared/storage/s3-store.js').then(({ createS3Store }) => createS3Store({ connection, logger }));
      return s3;
    },
    async close() {
      // A store that never came up (its creation failed) has nothing to close.
      const store = await s3?.catch(() => undefined);
      store?.close();
    },
  };
}
