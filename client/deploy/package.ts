/**
 * The Lambda deployment package of the worker: one esbuild bundle of worker/handler.ts as an ES
 * module (`index.mjs`, handler `index.handler`) with the tfjs WASM binaries beside it, and nothing
 * else: no node_modules, no s3rver, no tfjs-node, no test code. A bundled ES module has no
 * `require`, `__filename` or `__dirname`, which CommonJS dependencies (the AWS SDK's optional
 * requires, the WASM backend's loader) use, so a banner defines them from import.meta.url; the
 * WASM loader then finds its .wasm files next to the bundle. msgpackr runs without its native
 * add-on there (its pure-JS path, reported by the worker).
 *
 * The archive is reproducible (see zip.ts): the same sources give the same sha256.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeployError } from './errors.js';
import { deterministicZip, type PackageFile } from './zip.js';

/** Lambda's documented limits for a package uploaded directly (bytes). */
export const LAMBDA_ZIPPED_LIMIT = 50 * 1024 * 1024;
export const LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024;

const PACKAGE_HANDLER = 'index.handler';
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] as const;
export const NODE_RUNTIMES = ['nodejs20.x', 'nodejs22.x'] as const;

/** Packages a worker never loads: the client's servers, and native add-ons a bundle cannot carry. */
const EXCLUDED = ['s3rver', '@tensorflow/tfjs-node', 'msgpackr-extract'];

const BANNER = [
  "import { createRequire as __cirrusCreateRequire } from 'node:module';",
  "import { fileURLToPath as __cirrusFileURLToPath } from 'node:url';",
  "import { dirname as __cirrusDirname } from 'node:path';",
  'const require = __cirrusCreateRequire(import.meta.url);',
  'const __filename = __cirrusFileURLToPath(import.meta.url);',
  'const __dirname = __cirrusDirname(__filename);',
].join('\n');

interface WorkerPackageOptions {
  /** The handler module to bundle. Default: this build's dist/worker/handler.js. */
  entry?: string;
}

export interface WorkerPackage {
  zip: Uint8Array;
  /** Hex sha256 of the archive. */
  sha256: string;
  /** Base64 sha256 of the archive: Lambda's CodeSha256. */
  codeSha256: string;
  files: Array<{ name: string; bytes: number }>;
  zippedBytes: number;
  unzippedBytes: number;
  handler: string;
}

function defaultWorkerEntry(): string {
  // This file is dist/client/deploy/package.js; the handler is dist/worker/handler.js.
  return fileURLToPath(new URL('../../worker/handler.js', import.meta.url));
}

/** Bundles the worker and zips it with the WASM binaries; refuses a package over Lambda's limits. */
export async function buildWorkerPackage(options: WorkerPackageOptions = {}): Promise<WorkerPackage> {
  const entry = options.entry ?? defaultWorkerEntry();
  const bundle = await bundleWorker(entry);
  const files: PackageFile[] = [...bundle, ...(await wasmFiles())];
  const zip = deterministicZip(files);
  const pkg: WorkerPackage = {
    zip,
    sha256: createHash('sha256').update(zip).digest('hex'),
    codeSha256: createHash('sha256').update(zip).digest('base64'),
    files: files.map((f) => ({ name: f.name, bytes: f.bytes.byteLength })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    zippedBytes: zip.byteLength,
    unzippedBytes: files.reduce((s, f) => s + f.bytes.byteLength, 0),
    handler: PACKAGE_HANDLER,
  };
  checkPackageLimits(pkg);
  return pkg;
}

export function checkPackageLimits(pkg: Pick<WorkerPackage, 'zippedBytes' | 'unzippedBytes'>, source = 'the worker package'): void {
  if (pkg.zippedBytes > LAMBDA_ZIPPED_LIMIT) {
    throw new DeployError('DEPLOY_PACKAGE_TOO_LARGE', `${source} is ${mb(pkg.zippedBytes)} zipped, over Lambda's limit of ${mb(LAMBDA_ZIPPED_LIMIT)} for a direct upload`);
  }
  if (pkg.unzippedBytes > LAMBDA_UNZIPPED_LIMIT) {
    throw new DeployError('DEPLOY_PACKAGE_TOO_LARGE', `${source} is ${mb(pkg.unzippedBytes)} unzipped, over Lambda's limit of ${mb(LAMBDA_UNZIPPED_LIMIT)}`);
  }
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB (${bytes} bytes)`;
}

async function bundleWorker(entry: string): Promise<PackageFile[]> {
  // esbuild is loaded only when a package is built: the CLI's other commands never need it.
  const esbuild = await import('esbuild');
  let result: import('esbuild').BuildResult<{ write: false; outdir: string }>;
  try {
    result = await esbuild.build({
      entryPoints: { index: entry },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: '/cirrus-package',
      outExtension: { '.js': '.mjs' },
      write: false,
      minify: true,
      keepNames: true,
      legalComments: 'linked',
      banner: { js: BANNER },
      external: EXCLUDED,
      logLevel: 'silent',
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const first = errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new DeployError('DEPLOY_BUILD', `bundling the worker from ${entry} failed: ${first?.text ?? (err as Error).message}${where}`, { cause: err });
  }
  return result.outputFiles.map((f) => ({ name: f.path.slice('/cirrus-package/'.length), bytes: f.contents }));
}

async function wasmFiles(): Promise<PackageFile[]> {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  } catch (err) {
    throw new DeployError('DEPLOY_BUILD', `@tensorflow/tfjs-backend-wasm is not installed, so its .wasm files cannot go into the package: ${(err as Error).message}`);
  }
  const out: PackageFile[] = [];
  for (const name of WASM_FILES) {
    try {
      out.push({ name, bytes: new Uint8Array(await readFile(join(dir, name))) });
    } catch (err) {
      throw new DeployError('DEPLOY_BUILD', `${join(dir, name)}: cannot read the tfjs WASM binary: ${(err as Error).message}`);
    }
  }
  return out;
}
