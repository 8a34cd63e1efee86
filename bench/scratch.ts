/** What a bench that trains needs around it: a scratch CIRRUS_HOME of its own, and its JSON result file. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeOwnedTmpDir } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';

/**
 * A fresh temp dir for one bench run (cirrus-bench-<pid>-<name>-*); what earlier benches left when
 * they were killed (their pid is gone) is swept first. The caller removes it when done.
 */
export function scratchDir(name: string): string {
  return makeOwnedTmpDir('cirrus-bench-', `${name}-`);
}

/** Runs `body` with CIRRUS_HOME in a fresh temp dir (its embedded store), then restores it and removes the dir. */
export async function withScratchHome<T>(name: string, body: (work: string) => Promise<T>): Promise<T> {
  const work = scratchDir(name);
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    return await body(work);
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}

/** Writes bench/results/<name>-<time>.json with the benchmark's name and the machine; returns the path. */
export function writeResult(name: string, result: object): string {
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: name, machine: machineInfo(), ...result }, null, 2) + '\n');
  return file;
}
