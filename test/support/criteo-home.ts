/**
 * A temporary CIRRUS_HOME holding 'criteo', the small Criteo-like dataset the async-sgd and psShards
 * tests train on through cirrus.train (12,000 rows, 80% train, 14 hashed bits, 1,500 rows a shard).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRITEO_CAT_NAMES } from '../../algorithms/preprocess/criteo.js';
import { generateCriteoLike } from '../../client/datasets/generate.js';
import { preprocess } from '../../client/preprocess/preprocess.js';

export interface CriteoHome {
  /** The generated click-through rate. */
  ctr: number;
  /** Restores the previous CIRRUS_HOME and deletes the directory. */
  restore(): void;
}

export async function criteoHome(prefix: string): Promise<CriteoHome> {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const restore = (): void => {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(home, { recursive: true, force: true });
  };
  try {
    const file = join(home, 'criteo.tsv');
    const { ctr } = await generateCriteoLike({ rows: 12_000, seed: 9, file });
    await preprocess({ input: file, format: 'criteo', name: 'criteo', rowsPerShard: 1_500, split: 0.8, seed: 2, hash: { columns: [...CRITEO_CAT_NAMES], bits: 14 } });
    return { ctr, restore };
  } catch (err) {
    restore();
    throw err;
  }
}
