/** `cirrus bench train --efficiency`: the CPU-seconds table of efficiency.ts in a scratch store, with its JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { efficiencyWorkloads, measureEfficiency, renderEfficiency, type EfficiencyRow, type EfficiencySize, type EfficiencyBatch } from './efficiency.js';
import { machineInfo } from './machine.js';
import { startStoreProcess } from './store-process.js';
import { withScratchHome } from './scratch.js';

export function benchEfficiency(opts: { workers: number[]; workloads: Array<'mlp' | 'higgs-lr'>; size?: EfficiencySize; batches?: EfficiencyBatch[]; averageEvery?: number; higgsRows?: number; log: (l: string) => void }): Promise<{ rows: EfficiencyRow[]; table: string; file: string }> {
  return withScratchHome('eff', async (work) => {
    const store = await startStoreProcess(join(work, 's3'));
    try {
      const workloads = await efficiencyWorkloads(work, store.target, opts.workloads, opts.log, opts.size ?? 'short', opts.higgsRows);
      const rows = await measureEfficiency(workloads, store, opts.workers, opts.log, opts.batches ?? ['split'], opts.averageEvery ?? 0);
      mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
      const file = join(DEFAULT_RESULTS_DIR, `efficiency-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, JSON.stringify({ benchmark: 'train-efficiency', size: opts.size ?? 'short', higgsRows: opts.higgsRows, averageEvery: opts.averageEvery ?? 0, machine: machineInfo(), workloads, rows }, null, 2) + '\n');
      return { rows, table: renderEfficiency(rows), file };
    } finally {
      await store.stop();
    }
  });
}
