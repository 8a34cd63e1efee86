/**
 * Command-line entry of the parameter server: `node dist/paramserver/main.js [flags]` (the flags
 * are in server-cli.ts). An entry point only: importing this module starts a server, so code that
 * wants the functions imports server-cli.ts (or the room's index.ts).
 */
import { runParamServerCli } from './server-cli.js';

runParamServerCli(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`paramserver: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
