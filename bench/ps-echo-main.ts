/** Runs the benchmark's echo server in its own process; prints `listening host:port`. */
import { startEchoServer } from './ps-echo.js';

const server = await startEchoServer('127.0.0.1', 0);
process.stdout.write(`listening ${server.address}\n`);
const stop = () => void server.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
