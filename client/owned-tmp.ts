/**
 * Temp dirs named after the process that owns them (<prefix><pid>-...), so that a later process
 * can tell the dirs of owners that died without cleaning up (killed with SIGKILL) and remove them.
 * The local launcher's per-worker /tmp and the benches' scratch dirs are made this way.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './process-alive.js';

const swept = new Set<string>();

/** Removes the `prefix` dirs whose owning process is gone. */
function sweepDeadOwners(prefix: string): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const pid = /^(\d+)-/.exec(entry.slice(prefix.length))?.[1];
    if (pid !== undefined && !processAlive(Number(pid))) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/**
 * A fresh dir `<prefix><this pid>-<label>XXXXXX` in the machine's temp dir; the first call for a
 * prefix in this process first sweeps what dead owners left under it. The caller removes the dir.
 */
export function makeOwnedTmpDir(prefix: string, label = ''): string {
  if (!swept.has(prefix)) {
    swept.add(prefix);
    sweepDeadOwners(prefix);
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-${label}`));
}
