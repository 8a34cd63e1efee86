#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the prepare script). It joins the
// client's commands with those of the rooms above it (bench, hpo), which the client must not import.
// CIRRUS_BUILD_DIR points it at another build of the project (tests of a side build use it).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = process.env.CIRRUS_BUILD_DIR ? resolve(process.env.CIRRUS_BUILD_DIR) : join(root, 'dist');
const cli = join(build, 'client', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(`cirrus: ${cli} is missing; run 'npm install' (or 'npm run build') in ${root} first\n`);
  process.exit(2);
}
const load = (rel) => import(pathToFileURL(join(build, rel)).href);
const { main } = await load('client/cli.js');
const extensions = [(await load('bench/cli.js')).addBenchCommands];
if (existsSync(join(build, 'hpo', 'cli.js'))) extensions.push((await load('hpo/cli.js')).addSearchCommands);
await main(process.argv, extensions);
