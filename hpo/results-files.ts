/** Writes a search's results next to the user: `cirrus-search-<id>.json` (everything) and `.csv` (a row per trial). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SearchResult } from './search.js';
import type { TrialState } from './state.js';

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per trial (best first): its params as columns, then status, metrics, cost and job. */
function resultsCsv(trials: readonly TrialState[]): string {
  const paramKeys = [...new Set(trials.flatMap((t) => Object.keys(t.params)))];
  const headers = ['id', ...paramKeys, 'status', 'testAccuracy', 'testLoss', 'trainLoss', 'epochs', 'steps', 'wallSeconds', 'updatesPerSec', 'workerSeconds', 'usd', 'jobId', 'error'];
  const rows = trials.map((t) => [
    t.id,
    ...paramKeys.map((k) => t.params[k]),
    t.status,
    t.metrics?.testAccuracy,
    t.metrics?.testLoss,
    t.metrics?.trainLoss,
    t.metrics?.epochs,
    t.metrics?.steps,
    t.metrics?.wallSeconds,
    t.metrics?.updatesPerSec,
    t.cost?.workerSeconds,
    t.cost?.usd,
    t.jobId,
    t.error,
  ]);
  return [headers, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

export function writeResultFiles(result: SearchResult, dir: string): { json: string; csv: string } {
  const json = join(dir, `cirrus-search-${result.searchId}.json`);
  const csv = join(dir, `cirrus-search-${result.searchId}.csv`);
  const { top: _top, ...plain } = result;
  writeFileSync(json, JSON.stringify(plain, null, 2) + '\n');
  writeFileSync(csv, resultsCsv(result.trials));
  return { json, csv };
}
