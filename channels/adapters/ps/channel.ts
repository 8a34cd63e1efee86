/**
 * Channel over the Cirrus-TS parameter server. Unlike memcached and S3 the server can notify, so
 * wait/waitMany park one server-side WAIT per key instead of polling. A lost connection fails the
 * requests on it; the next request reconnects (a server restarted at the same address), retrying
 * with back-off for at most spec.timeoutMs.
 */
import { ParamClient, PsError } from '../../../paramserver/index.js';
import { CountingChannel, type Channel, type ChannelAbility, type Listing } from '../../channel.js';
import { ChannelError, WaitTimeoutError } from '../../errors.js';
import { assertKey } from '../../keys.js';
import type { PsSpec } from '../../spec.js';

export class PsChannel extends CountingChannel implements Channel, Listing {
  readonly kind = 'ps';
  readonly abilities: readonly ChannelAbility[] = ['list'];
  readonly endpoint: string;
  private closed = false;

  private reconnecting: Promise<ParamClient> | undefined;

  private constructor(
    private client: ParamClient,
    readonly spec: PsSpec,
  ) {
    super();
    this.endpoint = `ps://${spec.address}`;
  }

  /**
   * Connects (running the HMAC handshake when spec.token is set: the token itself is never sent)
   * and PINGs, all within spec.timeoutMs.
   */
  static async open(spec: PsSpec): Promise<PsChannel> {
    return new PsChannel(await connectOnce(spec), spec);
  }

  /** The live connection, reconnecting (one attempt series at a time) when the last one was lost. */
  private conn(): ParamClient | Promise<ParamClient> {
    if (!this.client.closed || this.closed) return this.client;
    this.reconnecting ??= (async () => {
      const deadline = Date.now() + this.spec.timeoutMs;
      for (let delay = 50; ; delay = Math.min(1_000, delay * 2)) {
        try {
          this.client = await connectOnce(this.spec);
          return this.client;
        } catch (err) {
          // Tries until the deadline itself, so a server back within timeoutMs is always found.
          const left = deadline - Date.now();
          if (left <= 0) throw err;
          await new Promise((r) => setTimeout(r, Math.min(left, delay * (0.5 + Math.random() / 2))));
        }
      }
    })().finally(() => (this.reconnecting = undefined));
    return this.reconnecting;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.check(key);
    this.counters.put.requests++;
    this.counters.put.bytes += value.byteLength;
    try {
      await (await this.conn()).set(key, value);
    } catch (err) {
      throw this.requestError(err, `put '${key}'`);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    this.counters.get.requests++;
    let value: Uint8Array | undefined;
    try {
      value = await (await this.conn()).get(key);
    } catch (err) {
      throw this.requestError(err, `get '${key}'`);
    }
    if (value) this.counters.get.bytes += value.byteLength;
    return value;
  }

  async getMany(keys: string[]): Promise<Array<Uint8Array | undefined>> {
    for (const k of keys) this.check(k);
    // All GETs are in flight at once on the one connection.
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async wait(key: string, deadline: number): Promise<Uint8Array> {
    const [v] = await this.waitMany([key], deadline);
    return v!;
  }

  async waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]> {
    for (const k of keys) this.check(k);
    const started = Date.now();
    const out: Array<Uint8Array | undefined> = new Array(keys.length);
    if (keys.length === 0) return [];
    const timeLeft = Math.max(0, deadline - started);
    let client: ParamClient;
    try {
      client = await this.conn();
    } catch (err) {
      throw this.requestError(err, `wait '${keys[0]}'`);
    }
    await new Promise<void>((resolve, reject) => {
      let outstanding = keys.length;
      let failed = false;
      const failOnce = (err: Error) => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      keys.forEach((key, i) => {
        this.counters.get.requests++;
        client.wait(key, timeLeft).then(
          (value) => {
            if (failed) return;
            if (value !== undefined) {
              out[i] = value;
              this.counters.get.bytes += value.byteLength;
              try {
                onValue?.(i, value);
              } catch (err) {
                failOnce(err instanceof Error ? err : new Error(String(err)));
                return;
              }
            }
            if (--outstanding === 0) resolve();
          },
          (err: unknown) => failOnce(this.requestError(err, `wait '${key}'`)),
        );
      });
    });
    // Every WAIT got its own answer: the ones that came back TIMEOUT are exactly the missing keys.
    const missing = keys.filter((_, i) => out[i] === undefined);
    if (missing.length > 0) throw new WaitTimeoutError(missing, Date.now() - started, this.endpoint);
    return out as Uint8Array[];
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    if (keys.length === 0) return;
    // One DEL carries every key, so it counts as one request.
    this.counters.delete.requests++;
    try {
      await (await this.conn()).del(keys);
    } catch (err) {
      throw this.requestError(err, `delete of ${keys.length} key${keys.length === 1 ? '' : 's'}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    this.checkOpen();
    this.counters.list.requests++;
    try {
      return await (await this.conn()).list(prefix);
    } catch (err) {
      throw this.requestError(err, `list '${prefix}'`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reconnecting?.catch(() => undefined);
    await this.client.close();
  }

  private check(key: string): void {
    this.checkOpen();
    assertKey(key);
  }

  private checkOpen(): void {
    if (this.closed) throw new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: channel is closed`);
  }

  private requestError(err: unknown, what: string): Error {
    if (err instanceof ChannelError) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (this.closed) return new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: ${what} failed: channel is closed`, { cause: err });
    return new ChannelError('CHANNEL_REQUEST', `${this.endpoint}: ${what} failed: ${message}`, { cause: err });
  }
}

/** Connects (running the HMAC handshake when spec.token is set: the token itself is never sent) and PINGs, within spec.timeoutMs. */
async function connectOnce(spec: PsSpec): Promise<ParamClient> {
  const deadline = Date.now() + spec.timeoutMs;
  let client: ParamClient | undefined;
  try {
    client = await ParamClient.connect(spec.address, spec.token === undefined ? { timeoutMs: spec.timeoutMs } : { timeoutMs: spec.timeoutMs, token: spec.token });
    await client.ping({ timeoutMs: Math.max(1, deadline - Date.now()) });
    return client;
  } catch (err) {
    await client?.close();
    const reason = err instanceof PsError ? err.detail : err instanceof Error ? err.message : String(err);
    throw new ChannelError('CHANNEL_UNREACHABLE', `parameter server at ${spec.address} is unreachable: ${reason}`, { cause: err });
  }
}
