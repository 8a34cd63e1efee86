/**
 * Reproducible zip archives for the Lambda package: entries sorted by name, one fixed modification
 * time, Unix permissions 0644, maximum deflate level, so the same files always give the same bytes
 * (and the same sha256, which is how `deploy` tells that nothing changed).
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { DeployError } from './errors.js';

/** 1980-01-01 00:00 local time: the earliest DOS date, written the same in every time zone. */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const UNIX = 3;
const FILE_MODE = 0o100644;

export interface PackageFile {
  /** Path inside the archive, '/'-separated. */
  name: string;
  bytes: Uint8Array;
}

export function deterministicZip(files: readonly PackageFile[]): Uint8Array {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: Zippable = {};
  for (const f of sorted) {
    if (f.name in entries) throw new DeployError('DEPLOY_BUILD', `the package lists '${f.name}' twice`);
    entries[f.name] = [f.bytes, { level: 9, mtime: FIXED_MTIME, os: UNIX, attrs: (FILE_MODE << 16) >>> 0 }];
  }
  return zipSync(entries);
}

/**
 * The files of a zip archive; `source` names it in errors. Directories are skipped. With
 * `maxUnzippedBytes`, an archive whose entries declare more is refused before anything is inflated.
 */
export function readZip(zip: Uint8Array, source: string, maxUnzippedBytes = Infinity): PackageFile[] {
  let entries: Record<string, Uint8Array>;
  let declared = 0;
  try {
    entries = unzipSync(zip, {
      filter: (f) => {
        declared += f.originalSize;
        if (declared > maxUnzippedBytes) throw new DeployError('DEPLOY_PACKAGE_TOO_LARGE', `${source}: unzipped size is over the limit of ${maxUnzippedBytes} bytes (at '${f.name}')`);
        return true;
      },
    });
  } catch (err) {
    if (err instanceof DeployError) throw err;
    throw new DeployError('DEPLOY_PACKAGE_INVALID', `${source}: not a readable zip archive (${(err as Error).message})`);
  }
  return Object.entries(entries)
    .filter(([name]) => !name.endsWith('/'))
    .map(([name, bytes]) => ({ name, bytes }));
}
