/**
 * Enumerates a memcached server's keys with `lru_crawler metadump hash` (or `all` before 1.6; text
 * protocol, on its own short-lived connection), so a job's keys can be found and deleted although
 * memcached has no LIST. A crawl sees the items present when it passes them: keys written during
 * the crawl may be missed, so callers list after the writers stopped.
 */
import net from 'node:net';
import { ChannelError } from '../../errors.js';

const BUSY_RETRIES = 20;

function metadump(host: string, port: number, timeoutMs: number, mode: 'hash' | 'all'): Promise<string | 'busy'> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let text = '';
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, value?: string | 'busy') => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`lru_crawler metadump ${mode}\r\n`));
    sock.on('data', (chunk: string) => {
      text += chunk;
      if (text.startsWith('BUSY')) finish(undefined, 'busy');
      else if (/^(ERROR|CLIENT_ERROR|SERVER_ERROR)/.test(text)) finish(new Error(text.trim()));
      else if (text.endsWith('END\r\n')) finish(undefined, text);
    });
    sock.on('error', (e) => finish(e));
  });
}

/** User keys under `prefix` that have not expired (chunk items of large values are left out), sorted. */
export async function listMemcachedKeys(server: string, prefix: string, timeoutMs: number, isChunk: (key: string) => boolean): Promise<string[]> {
  const i = server.lastIndexOf(':');
  let dump: string | 'busy' = 'busy';
  try {
    for (let attempt = 0; attempt < BUSY_RETRIES && dump === 'busy'; attempt++) {
      // 'hash' walks the hash table (every item; memcached >= 1.6); older servers crawl their LRUs.
      dump = await metadump(server.slice(0, i), Number(server.slice(i + 1)), timeoutMs, 'hash').catch(() => metadump(server.slice(0, i), Number(server.slice(i + 1)), timeoutMs, 'all'));
      if (dump === 'busy') await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    throw new ChannelError('CHANNEL_REQUEST', `memcached at ${server}: listing keys (lru_crawler metadump) failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (dump === 'busy') throw new ChannelError('CHANNEL_REQUEST', `memcached at ${server}: its LRU crawler stayed busy; cannot list keys now`);
  const now = Math.floor(Date.now() / 1000);
  const keys: string[] = [];
  for (const line of dump.split(/\r?\n/)) {
    const m = /^key=(\S+) exp=(-?\d+)/.exec(line);
    if (!m) continue;
    const key = decodeURIComponent(m[1]!);
    const exp = Number(m[2]);
    if (key.startsWith(prefix) && !isChunk(key) && (exp === -1 || exp > now)) keys.push(key);
  }
  return keys.sort();
}
