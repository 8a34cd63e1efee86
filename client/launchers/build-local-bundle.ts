/** `npm run build` step: the local workers' bundle (see local-bundle.ts). */
import { buildLocalBundle } from './local-bundle.js';

const r = await buildLocalBundle();
process.stdout.write(`local worker bundle: ${r.dir}worker.cjs (${(r.bytes / 1048576).toFixed(2)} MiB)\n`);
