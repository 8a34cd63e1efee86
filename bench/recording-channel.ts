/**
 * Wraps a Channel and records the data-carrying traffic of the current round (sizes of values
 * written and of values read), so the benchmark can replay the same bytes through the bare client.
 */
import type { Channel, ChannelStats } from '../channels/index.js';

export interface RoundTraffic {
  puts: number[];
  gets: number[];
}

export class RecordingChannel implements Channel {
  readonly kind: string;
  readonly endpoint: string;
  traffic: RoundTraffic = { puts: [], gets: [] };

  constructor(private readonly inner: Channel) {
    this.kind = inner.kind;
    this.endpoint = inner.endpoint;
  }

  /** Returns what was recorded since the last call and starts a new record. */
  take(): RoundTraffic {
    const t = this.traffic;
    this.traffic = { puts: [], gets: [] };
    return t;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.traffic.puts.push(value.byteLength);
    return this.inner.put(key, value);
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    const v = await this.inner.get(key);
    if (v) this.traffic.gets.push(v.byteLength);
    return v;
  }
  async getMany(keys: string[]): Promise<Array<Uint8Array | undefined>> {
    const vs = await this.inner.getMany(keys);
    for (const v of vs) if (v) this.traffic.gets.push(v.byteLength);
    return vs;
  }
  async wait(key: string, deadline: number): Promise<Uint8Array> {
    const v = await this.inner.wait(key, deadline);
    this.traffic.gets.push(v.byteLength);
    return v;
  }
  async waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]> {
    const vs = await this.inner.waitMany(keys, deadline, onValue);
    for (const v of vs) this.traffic.gets.push(v.byteLength);
    return vs;
  }
  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }
  stats(): ChannelStats {
    return this.inner.stats();
  }
  resetStats(): void {
    this.inner.resetStats();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
