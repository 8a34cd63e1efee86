/**
 * Where datasets live. With no configuration: an S3 server (s3rver) started in-process on
 * 127.0.0.1, its data under `.cirrus/s3` in the working directory (or $CIRRUS_HOME/s3), so
 * datasets survive between commands; workers reach it over HTTP like they would reach S3.
 * Otherwise any object store URL: s3://bucket/prefix?endpoint=..., file:///dir, memory://.
 */
import { join, resolve } from 'node:path';
import { s3SpecFor, startS3Server, type S3Server } from './servers/index.js';
import { openObjectStore, DatasetStore, type ObjectStore, type S3Spec } from '../channels/index.js';

export const EMBEDDED_BUCKET = 'cirrus';

export interface StoreHandle {
  datasets: DatasetStore;
  /** The plain object store under the datasets (job records, search state). */
  objects: ObjectStore;
  /** What workers are given to open the same store (a URL or an S3 spec with endpoint and credentials). */
  workerTarget: string | S3Spec;
  /** Human-readable location. */
  url: string;
  close(): Promise<void>;
}

export function cirrusHome(): string {
  return resolve(process.env.CIRRUS_HOME ?? '.cirrus');
}

/** Opens `target`, or the embedded S3 server on `<home>/s3` when no target is given. */
export async function openStore(target?: string, home = cirrusHome(), embedded: { host?: string } = {}): Promise<StoreHandle> {
  if (target) {
    const datasets = new DatasetStore(await openObjectStore(target));
    return { datasets, objects: datasets.store, workerTarget: target, url: datasets.url, close: () => datasets.close() };
  }
  const directory = join(home, 's3');
  const server: S3Server = await startS3Server({ directory, buckets: [EMBEDDED_BUCKET], ...(embedded.host !== undefined ? { host: embedded.host } : {}) });
  try {
    const spec = s3SpecFor(server, EMBEDDED_BUCKET);
    const datasets = new DatasetStore(await openObjectStore(spec));
    return {
      datasets,
      objects: datasets.store,
      workerTarget: spec,
      url: `embedded s3rver at ${server.endpoint} (data in ${directory})`,
      async close() {
        await datasets.close();
        await server.stop();
      },
    };
  } catch (e) {
    await server.stop();
    throw e;
  }
}
