/**
 * Snapshots of a parameter server's models in a directory or an S3 prefix.
 *
 * Layout under the base: `<id>/part-<n>.bin` (one serialized ParamModel each), then
 * `<id>/manifest.json`, written last, listing each model's name, part, length and sha256. A snapshot
 * without a manifest is incomplete (a writer died or is still writing) and is never loaded. Since
 * some stores are not atomic (s3rver serves a part that is still being written with partial bytes),
 * loadNewest also verifies every part's length and checksum and falls back to the previous snapshot
 * when anything does not match.
 *
 * Ids are `YYYYMMDDTHHMMSSmmmZ-<6 hex>`: byte order is time order, and the random suffix keeps two
 * writers apart. Within a process ids strictly increase, even within one millisecond.
 *
 * URLs:
 *   file:///abs/dir
 *   s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&accessKeyId=..&secretAccessKey=..&forcePathStyle=true
 * For S3 every query field is optional: without endpoint the SDK's default endpoint, region and
 * credential chain apply; forcePathStyle defaults to true with an endpoint (s3rver, MinIO).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { ParamModel, PsModelError } from './model.js';
import { createS3Client, deleteObjects, getObject, listObjects, putObject, type S3Connection } from './s3/index.js';

export interface LoadedSnapshot {
  id: string;
  models: Map<string, ParamModel>;
  /** The server's other state (values, registrations), when the snapshot has it. */
  state?: Uint8Array;
  /** Newer snapshots passed over, newest first, with why (incomplete, corrupt part, ...). */
  skipped: { id: string; reason: string }[];
}

export interface SnapshotStore {
  /** The URL the store was opened with, credentials removed. */
  readonly url: string;
  /** Writes every model (serialized synchronously first, so the snapshot is one point in time); resolves with the id. */
  save(models: Map<string, ParamModel>, state?: Uint8Array): Promise<string>;
  /** The newest snapshot that is complete and verifies, or undefined if there is none. */
  loadNewest(): Promise<LoadedSnapshot | undefined>;
  /**
   * Keeps the newest `keep` complete snapshots (those with a manifest) and deletes everything
   * older than the oldest kept one; newer incomplete snapshots may still be in flight and stay.
   */
  prune(keep: number): Promise<void>;
  close(): Promise<void>;
}

/** The object operations a store needs; keys are relative to the store's base. */
interface Blobs {
  put(key: string, bytes: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** Names of the top-level 'directories' (snapshot ids and anything else). */
  listDirs(): Promise<string[]>;
  removeDir(dir: string): Promise<void>;
  close(): Promise<void>;
}

interface ManifestEntry {
  name: string;
  part: string;
  bytes: number;
  sha256: string;
}

interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  id: string;
  createdAt: string;
  models: ManifestEntry[];
  /** The server-state part (state.bin), when saved with one. */
  state?: { bytes: number; sha256: string };
}

const MANIFEST_FORMAT = 'cirrus-ps-snapshot';
const MANIFEST = 'manifest.json';
const STATE = 'state.bin';
const ID_PATTERN = /^\d{8}T\d{9}Z-[0-9a-f]{6}$/;

let lastIdMs = 0;

/** A new snapshot id, later in byte order than every earlier one from this process. */
export function newSnapshotId(now = Date.now()): string {
  const ms = Math.max(now, lastIdMs + 1);
  lastIdMs = ms;
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const compact = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17, 19) + iso.slice(20, 23) + 'Z';
  return `${compact}-${randomBytes(3).toString('hex')}`;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

class Store implements SnapshotStore {
  constructor(
    readonly url: string,
    private readonly blobs: Blobs,
  ) {}

  async save(models: Map<string, ParamModel>, state?: Uint8Array): Promise<string> {
    const id = newSnapshotId();
    const parts = [...models].map(([name, model], n) => ({ name, part: `part-${String(n).padStart(5, '0')}.bin`, bytes: model.serialize() }));
    await Promise.all([...parts.map((p) => this.blobs.put(`${id}/${p.part}`, p.bytes)), ...(state ? [this.blobs.put(`${id}/${STATE}`, state)] : [])]);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: 1,
      id,
      createdAt: new Date().toISOString(),
      models: parts.map((p) => ({ name: p.name, part: p.part, bytes: p.bytes.byteLength, sha256: sha256(p.bytes) })),
      ...(state ? { state: { bytes: state.byteLength, sha256: sha256(state) } } : {}),
    };
    // Last: its presence is what makes the snapshot visible.
    await this.blobs.put(`${id}/${MANIFEST}`, new TextEncoder().encode(JSON.stringify(manifest)));
    return id;
  }

  async loadNewest(): Promise<LoadedSnapshot | undefined> {
    const skipped: { id: string; reason: string }[] = [];
    for (const id of await this.ids()) {
      try {
        const { models, state } = await this.load(id);
        return { id, models, ...(state ? { state } : {}), skipped };
      } catch (err) {
        if (!(err instanceof PsModelError)) throw err;
        skipped.push({ id, reason: err.message });
      }
    }
    return undefined;
  }

  async prune(keep: number): Promise<void> {
    if (!Number.isSafeInteger(keep) || keep < 1) throw new PsModelError('PS_ARGUMENT', `prune: keep must be an integer >= 1, got ${keep}`);
    const ids = await this.ids();
    let complete = 0;
    let cut = ids.length;
    for (let i = 0; i < ids.length; i++) {
      if ((await this.blobs.get(`${ids[i]}/${MANIFEST}`)) === undefined) continue;
      if (++complete === keep) {
        cut = i + 1;
        break;
      }
    }
    for (const id of ids.slice(cut)) await this.blobs.removeDir(id);
  }

  close(): Promise<void> {
    return this.blobs.close();
  }

  /** Snapshot ids, newest first. */
  private async ids(): Promise<string[]> {
    const dirs = (await this.blobs.listDirs()).filter((d) => ID_PATTERN.test(d));
    return dirs.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  }

  /** Reads and verifies one snapshot; PsModelError('PS_SNAPSHOT') names the first problem. */
  private async load(id: string): Promise<{ models: Map<string, ParamModel>; state?: Uint8Array }> {
    const fail = (what: string): never => {
      throw new PsModelError('PS_SNAPSHOT', `snapshot ${id}: ${what}`);
    };
    const raw = await this.blobs.get(`${id}/${MANIFEST}`);
    if (raw === undefined) return fail('no manifest (incomplete)');
    const manifest = parseManifest(raw, id, fail);
    const models = new Map<string, ParamModel>();
    // Sequential: a large snapshot should not hold every part in memory twice at once.
    for (const entry of manifest.models) {
      const bytes = await this.blobs.get(`${id}/${entry.part}`);
      if (bytes === undefined) fail(`part ${entry.part} (model '${entry.name}') is missing`);
      if (bytes!.byteLength !== entry.bytes) fail(`part ${entry.part} (model '${entry.name}') has ${bytes!.byteLength} bytes, the manifest says ${entry.bytes}`);
      if (sha256(bytes!) !== entry.sha256) fail(`part ${entry.part} (model '${entry.name}') does not match its sha256`);
      try {
        models.set(entry.name, ParamModel.deserialize(bytes!));
      } catch (err) {
        fail(`model '${entry.name}': ${(err as Error).message}`);
      }
    }
    if (!manifest.state) return { models };
    const state = await this.blobs.get(`${id}/${STATE}`);
    if (state === undefined) fail(`part ${STATE} is missing`);
    if (state!.byteLength !== manifest.state.bytes || sha256(state!) !== manifest.state.sha256) fail(`part ${STATE} does not match its length and sha256`);
    return { models, state: state! };
  }
}

function parseManifest(raw: Uint8Array, id: string, fail: (what: string) => never): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch {
    return fail(`manifest is not valid JSON (${raw.byteLength} bytes; partly written?)`);
  }
  const o = m as Partial<Manifest>;
  if (typeof o !== 'object' || o === null || o.format !== MANIFEST_FORMAT || o.version !== 1) fail(`manifest is not a ${MANIFEST_FORMAT} version 1 manifest`);
  if (o.id !== id) fail(`manifest names snapshot ${String(o.id)}`);
  if (!Array.isArray(o.models)) fail('manifest has no models list');
  const names = new Set<string>();
  for (const [n, e] of o.models!.entries()) {
    const ok =
      typeof e === 'object' && e !== null && typeof e.name === 'string' && typeof e.part === 'string' && /^part-\d+\.bin$/.test(e.part) &&
      Number.isSafeInteger(e.bytes) && e.bytes >= 0 && typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256);
    if (!ok) fail(`manifest entry ${n} is malformed`);
    if (names.has(e.name)) fail(`manifest lists model '${e.name}' twice`);
    names.add(e.name);
  }
  return o as Manifest;
}

class FileBlobs implements Blobs {
  constructor(private readonly dir: string) {}

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = join(this.dir, key);
    await mkdir(join(path, '..'), { recursive: true });
    // Temp file, fsync, rename: the final name only ever holds complete bytes, even after a crash.
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(join(this.dir, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(`read ${join(this.dir, key)}`, err);
    }
  }

  async listDirs(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      throw ioError(`list ${this.dir}`, err);
    }
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async removeDir(dir: string): Promise<void> {
    await rm(join(this.dir, dir), { recursive: true, force: true });
  }

  async close(): Promise<void> {}
}

class S3Blobs implements Blobs {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** '' or 'some/prefix/' */
    private readonly base: string,
  ) {}

  async put(key: string, bytes: Uint8Array): Promise<void> {
    try {
      await putObject(this.client, this.bucket, this.base + key, bytes);
    } catch (err) {
      throw ioError(`PUT s3://${this.bucket}/${this.base}${key}`, err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      // A part read short (a store that shows a PUT in flight) is caught by the manifest's length check.
      return (await getObject(this.client, this.bucket, this.base + key, { whole: true }))?.body;
    } catch (err) {
      throw ioError(`GET s3://${this.bucket}/${this.base}${key}`, err);
    }
  }

  async listDirs(): Promise<string[]> {
    try {
      const prefixes = await listObjects(this.client, this.bucket, this.base, { delimiter: '/' });
      return prefixes.map((p) => p.slice(this.base.length, -1));
    } catch (err) {
      throw ioError(`LIST s3://${this.bucket}/${this.base}`, err);
    }
  }

  async removeDir(dir: string): Promise<void> {
    const prefix = `${this.base}${dir}/`;
    const what = `DELETE s3://${this.bucket}/${prefix}*`;
    let keys: string[];
    try {
      keys = await listObjects(this.client, this.bucket, prefix);
    } catch (err) {
      throw ioError(what, err);
    }
    await deleteObjects(this.client, this.bucket, keys, {
      concurrency: 1,
      requestError: (_batch, err) => ioError(what, err),
      refused: (failed) => ioError(what, new Error(`${failed[0]!.key}: ${failed[0]!.code} ${failed[0]!.message}`)),
    });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function ioError(what: string, err: unknown): PsModelError {
  return new PsModelError('PS_SNAPSHOT', `snapshot store: ${what} failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
}

/** Opens the store at `url` (see the module comment for the forms); the directory is created if needed. */
export async function openSnapshotStore(url: string): Promise<SnapshotStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PsModelError('PS_ARGUMENT', `snapshot URL '${url}' is invalid: expected file:///abs/dir or s3://bucket/prefix`);
  }
  if (parsed.protocol === 'file:') {
    if (parsed.search) throw new PsModelError('PS_ARGUMENT', `snapshot URL '${url}': file URLs take no query`);
    const dir = fileURLToPath(parsed);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw ioError(`create directory ${dir}`, err);
    }
    return new Store(url, new FileBlobs(dir));
  }
  if (parsed.protocol === 's3:') return new Store(redact(parsed), openS3(parsed));
  throw new PsModelError('PS_ARGUMENT', `snapshot URL '${url}' has unsupported scheme '${parsed.protocol}': expected file: or s3:`);
}

const S3_FIELDS = new Set(['endpoint', 'region', 'accessKeyId', 'secretAccessKey', 'sessionToken', 'forcePathStyle']);

function openS3(u: URL): S3Blobs {
  const bucket = u.hostname;
  if (!bucket) throw new PsModelError('PS_ARGUMENT', `snapshot URL '${redact(u)}' names no bucket`);
  for (const key of u.searchParams.keys()) {
    if (!S3_FIELDS.has(key)) throw new PsModelError('PS_ARGUMENT', `snapshot URL '${redact(u)}': unknown query field '${key}'; expected ${[...S3_FIELDS].join(', ')}`);
  }
  const q = (k: string) => u.searchParams.get(k) ?? undefined;
  const endpoint = q('endpoint');
  const conn: S3Connection = { endpoint, region: q('region') ?? (endpoint ? 'us-east-1' : undefined) };
  const pathStyle = q('forcePathStyle');
  if (pathStyle !== undefined && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new PsModelError('PS_ARGUMENT', `snapshot URL '${redact(u)}': forcePathStyle must be true or false`);
  }
  conn.forcePathStyle = pathStyle === undefined ? endpoint !== undefined : pathStyle === 'true';
  const accessKeyId = q('accessKeyId');
  const secretAccessKey = q('secretAccessKey');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new PsModelError('PS_ARGUMENT', `snapshot URL '${redact(u)}': give both accessKeyId and secretAccessKey, or neither`);
  }
  if (accessKeyId !== undefined && secretAccessKey !== undefined) conn.credentials = { accessKeyId, secretAccessKey, sessionToken: q('sessionToken') };
  const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
  return new S3Blobs(createS3Client(conn), bucket, prefix ? `${prefix}/` : '');
}

/** The URL without secrets, for messages and `store.url`. */
function redact(u: URL): string {
  const copy = new URL(u.href);
  for (const k of ['secretAccessKey', 'sessionToken']) if (copy.searchParams.has(k)) copy.searchParams.set(k, '***');
  return copy.href;
}
