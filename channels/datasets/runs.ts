/** Preprocessing runs of a dataset: run ids (they sort by creation time) and the run a key belongs to. */
import { randomBytes } from 'node:crypto';
import { datasetPrefix } from './manifest.js';

/** Run ids sort by creation time: '20250102T030405678Z-9f3a61c2'. */
const RUN_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{8}$/;

export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Creation time of a run id, or undefined when the segment is not one. */
export function runTime(runId: string): number | undefined {
  const m = RUN_ID.exec(runId);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
}

/** The run id segment of a key under datasets/<name>/ (or undefined for keys outside any run). */
export function runOf(name: string, key: string): string | undefined {
  const rest = key.slice(datasetPrefix(name).length);
  const slash = rest.indexOf('/');
  return slash < 0 ? undefined : rest.slice(0, slash);
}
