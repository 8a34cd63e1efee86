/**
 * A host of its own for emulated workers (Linux, root): a network namespace joined to this one by a veth pair, with
 * addresses in 198.18.0.0/15 (the benchmarking range, never routed). Inside it, 127.0.0.1 is the
 * namespace's own loopback, so a server this process binds to loopback is unreachable from there,
 * as the user's machine is from Lambda. Servers that workers must reach bind `hostAddress`.
 *
 * Whoever creates a namespace deletes it; namespaces left by a killed process (named after a pid
 * that is gone) are swept by the next creation. Needs root (CAP_NET_ADMIN) and iproute2.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { processAlive } from '../../process-alive.js';

const run = promisify(execFile);
const PREFIX = 'cirrus-w';
let seq = 0;

export interface WorkerNetwork {
  /** The namespace's name (for `ip netns exec`). */
  readonly name: string;
  /** This host's address on the link: what servers for the workers bind. */
  readonly hostAddress: string;
  /** The workers' address inside the namespace. */
  readonly workerAddress: string;
  /** Command prefix that runs a program inside the namespace. */
  readonly execPrefix: readonly string[];
  close(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}


/** Deletes namespaces of earlier test runs whose process is gone. */
async function sweepStale(): Promise<void> {
  const list = await ip('netns', 'list');
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${PREFIX}-(\\d+)-\\d+)\\b`).exec(line.trim());
    if (m && !processAlive(Number(m[2]))) await ip('netns', 'del', m[1]!).catch(() => undefined);
  }
}

/** The /30 for this run's n-th network: 198.18.0.0/15 holds 32,768 of them. */
function subnet(n: number): { host: string; worker: string } {
  const base = (n % 32768) * 4;
  const octets = (v: number) => `198.${18 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}`;
  return { host: octets(base + 1), worker: octets(base + 2) };
}

export async function createWorkerNetwork(): Promise<WorkerNetwork> {
  await sweepStale();
  const n = ++seq;
  const name = `${PREFIX}-${process.pid}-${n}`;
  // Interface names have at most 15 characters.
  const tag = `${(process.pid % 1_000_000).toString(36)}${n.toString(36)}`;
  const hostIf = `cvh${tag}`;
  const nsIf = `cvn${tag}`;
  const { host, worker } = subnet(process.pid * 8 + n);
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    await ip('link', 'set', nsIf, 'netns', name);
    await ip('addr', 'add', `${host}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${worker}/30`, 'dev', nsIf);
    await ip('netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up');
    await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    await ip('link', 'del', hostIf).catch(() => undefined);
    await ip('netns', 'del', name).catch(() => undefined);
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    name,
    hostAddress: host,
    workerAddress: worker,
    execPrefix: ['ip', 'netns', 'exec', name],
    // Deleting the namespace deletes its end of the pair, which takes the host's end with it.
    close: () => (closed ??= ip('netns', 'del', name).then(() => undefined)),
  };
}
