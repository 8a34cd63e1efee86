/** The file object store: a directory, one file per key, atomic puts. */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ObjectStore } from '../datasets/types.js';
import { ObjectStoreError, assertObjectKey, assertPrefix, compareKeys, printable } from '../object-store.js';

/** Temp files of puts in progress: '.<name>.<random>.cirrus-tmp', next to their target. */
const TEMP_SUFFIX = '.cirrus-tmp';

/** Key 'a/b/c' is the file <dir>/a/b/c. Puts are atomic: temp file in the same directory, then rename. */
export class FileObjectStore implements ObjectStore {
  readonly url: string;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.url = pathToFileURL(this.dir).href;
  }

  private pathOf(key: string): string {
    assertObjectKey(key, this.url);
    // A user key must never look like one of our temp files, or list() would hide it.
    if (key.split('/').some((s) => s.endsWith(TEMP_SUFFIX))) {
      throw new ObjectStoreError('OBJECT_STORE_KEY', `key '${printable(key)}' for ${this.url} is invalid: segments ending in '${TEMP_SUFFIX}' are reserved for temp files`);
    }
    return join(this.dir, ...key.split('/'));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const parent = dirname(path);
    const temp = join(parent, `.${path.slice(parent.length + 1)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    // A concurrent delete() may prune the (momentarily empty) parent between mkdir and write.
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(parent, { recursive: true });
        await writeFile(temp, bytes);
        await rename(temp, path);
        return;
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        if (errno(err) === 'ENOENT' && attempt < 3) continue;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `PUT '${key}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const path = this.pathOf(key);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      const code = errno(err);
      // ENOTDIR: a prefix of the key is a file, so the key cannot exist.
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new ObjectStoreError('OBJECT_STORE_REQUEST', `GET '${key}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
    }
    // Small Buffers may sit at any offset of a shared pool; shards decode zero-copy only when aligned.
    return buf.byteOffset % 8 === 0 ? buf : new Uint8Array(buf);
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix, this.url);
    // Walk only the deepest directory the prefix names completely.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash + 1);
    const keys: string[] = [];
    const walk = async (relDir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.dir, ...relDir.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `LIST '${prefix}*' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
      for (const e of entries) {
        const key = relDir + e.name;
        if (e.isDirectory()) {
          // Only descend where keys matching the prefix can be.
          if ((key + '/').startsWith(prefix) || prefix.startsWith(key + '/')) await walk(key + '/');
        } else if (e.isFile() && !e.name.endsWith(TEMP_SUFFIX) && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(base);
    return keys.sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    const paths = keys.map((k) => this.pathOf(k));
    const parents = new Set<string>();
    for (let i = 0; i < paths.length; i++) {
      try {
        await unlink(paths[i]!);
        parents.add(dirname(paths[i]!));
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `DELETE '${keys[i]}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    // Prune directories left empty (deepest first) so deleted datasets leave no skeleton behind.
    const ordered = [...parents].sort((a, b) => b.length - a.length);
    for (const p of ordered) await this.pruneUp(p);
  }

  private async pruneUp(start: string): Promise<void> {
    for (let d = start; d.length > this.dir.length && d.startsWith(this.dir + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
