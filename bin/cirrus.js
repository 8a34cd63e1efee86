#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'client', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(`cirrus: ${cli} is missing; run 'npm install' (or 'npm run build') in ${root} first\n`);
  process.exit(2);
}
const { main } = await import(cli);
await main(process.argv);
