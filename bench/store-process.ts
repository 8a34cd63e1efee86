/**
 * The efficiency bench's object store as a separate process (store-child.ts). Both sides of the
 * comparison read their shards from it -- the plain process and cirrus.train's workers and client --
 * so its CPU-seconds can be reported apart and left out of both, as AWS S3's would be.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { S3RVER_CREDENTIALS, processCpuSeconds } from '../client/index.js';

export interface StoreProcess {
  /** The object store URL for train({store}), preprocess({store}) and the plain process. */
  target: string;
  /** The store process's CPU-seconds so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** How long the store may take to print its endpoint. */
const START_TIMEOUT_MS = 30_000;

export async function startStoreProcess(directory: string): Promise<StoreProcess> {
  const entry = fileURLToPath(new URL('./store-child.js', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [entry, directory], { stdio: ['pipe', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`bench efficiency: the store process printed no endpoint within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`bench efficiency: the store process exited with ${code} before it printed its endpoint`)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve((JSON.parse(out.slice(0, nl)) as { endpoint: string }).endpoint);
    });
  });
  // Workers and the plain process find s3rver's fixed credentials through the standard AWS chain.
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  const pid = child.pid!;
  return {
    target: `s3://cirrus?endpoint=${endpoint}&region=us-east-1`,
    cpuSeconds: () => processCpuSeconds(pid) ?? NaN,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.on('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.stdin!.end();
      }),
  };
}
