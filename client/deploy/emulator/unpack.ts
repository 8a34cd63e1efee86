/**
 * A package unzipped the way Lambda sees it: in a fresh directory where Node finds no
 * node_modules on the way up, so the code can only load what it carries.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { DeployError } from '../errors.js';
import { readZip } from '../zip.js';
import { LAMBDA_UNZIPPED_LIMIT } from '../package.js';

export interface UnpackedPackage {
  /** The task root (LAMBDA_TASK_ROOT). */
  dir: string;
  remove(): Promise<void>;
}

/** The first node_modules directory Node would search from `dir`, if any. */
export function nodeModulesAbove(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return join(d, 'node_modules');
    if (dirname(d) === d) return undefined;
  }
}

export async function unpackPackage(zip: Uint8Array, source = 'the worker package'): Promise<UnpackedPackage> {
  const dir = await mkdtemp(join(tmpdir(), 'cirrus-package-'));
  try {
    const above = nodeModulesAbove(dir);
    if (above) throw new DeployError('DEPLOY_PACKAGE_INVALID', `cannot unpack ${source} where it would see ${above}: Lambda has none (set TMPDIR elsewhere)`);
    for (const f of readZip(zip, source, LAMBDA_UNZIPPED_LIMIT)) {
      const target = resolve(dir, f.name);
      if (!target.startsWith(dir + sep)) throw new DeployError('DEPLOY_PACKAGE_INVALID', `${source}: entry '${f.name}' leaves the package directory`);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, f.bytes);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
