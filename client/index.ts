/**
 * The client room: the stateful side. `import cirrus from 'cirrus-ts'` gives the user-facing API;
 * the named exports are the building blocks.
 */
import { generateCriteoLike, generateHiggsLike } from './datasets/generate.js';
import { preprocess } from './preprocess/preprocess.js';
import { openStore } from './store.js';

export { channelCostUsd, lambdaCostUsd, loadPrices, DEFAULT_PRICES_FILE, PricesError, type Prices } from './cost.js';
export { buildProgram, main } from './cli.js';
export { openStore, cirrusHome, EMBEDDED_BUCKET, type StoreHandle } from './store.js';
export { preprocess, type PreprocessOptions } from './preprocess/preprocess.js';
export { generateCriteoLike, generateHiggsLike, type CriteoOptions, type CriteoTruth, type HiggsOptions, type HiggsTruth } from './datasets/generate.js';
export { LocalLauncher, type LocalLauncherOptions } from './launchers/local.js';
export type { Launcher, WorkerHandle, WorkerResult } from './launchers/types.js';

/** Dataset helpers under one name, as in `cirrus.datasets.generate(...)`. */
export const datasets = {
  /** Writes a synthetic dataset file: Criteo-like TSV or Higgs-like CSV. */
  generate(opts: { kind: 'criteo' | 'higgs'; rows: number; seed: number; file: string }) {
    return opts.kind === 'criteo' ? generateCriteoLike(opts) : generateHiggsLike(opts);
  },
  /** Manifests of every dataset in the store (default: the embedded S3 server under .cirrus/). */
  async list(store?: string) {
    const h = await openStore(store);
    try {
      return await h.datasets.list();
    } finally {
      await h.close();
    }
  },
  async show(name: string, store?: string) {
    const h = await openStore(store);
    try {
      return await h.datasets.manifest(name);
    } finally {
      await h.close();
    }
  },
  async remove(name: string, store?: string) {
    const h = await openStore(store);
    try {
      await h.datasets.remove(name);
    } finally {
      await h.close();
    }
  },
};

const cirrus = { preprocess, datasets };
export default cirrus;
