/**
 * `npm run build` (and so `npm install`) ends here: the Lambda package of this build, written to
 * dist/lambda/worker.zip, with its sha256 beside it. A package over Lambda's limits fails the build.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildWorkerPackage } from './package.js';

const out = fileURLToPath(new URL('../../lambda/worker.zip', import.meta.url));
const pkg = await buildWorkerPackage();
await mkdir(fileURLToPath(new URL('../../lambda/', import.meta.url)), { recursive: true });
await writeFile(`${out}.tmp`, pkg.zip);
await rename(`${out}.tmp`, out);
await writeFile(`${out}.sha256`, `${pkg.sha256}  worker.zip\n`);
process.stdout.write(`lambda package: ${out} (${(pkg.zippedBytes / 1048576).toFixed(2)} MiB zipped, ${(pkg.unzippedBytes / 1048576).toFixed(2)} MiB unzipped), sha256 ${pkg.sha256}\n`);
