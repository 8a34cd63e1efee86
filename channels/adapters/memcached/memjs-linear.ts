/**
 * memjs with a linear-time receive path. memjs 1.3 appends every socket packet to its response
 * buffer by allocating a new buffer and copying everything received so far, so reading one value
 * of n bytes costs O(n^2 / packet) copying (an 8 MB get ~45 ms). This Server subclass keeps the
 * packets in a list and copies each response once, when it is complete; everything else (requests,
 * timeouts, SASL, error handling) is memjs' own. Used by the memcached channel and the benchmark's
 * bare client alike, so their comparison stays like for like.
 */
import type { Socket } from 'node:net';
import memjs from 'memjs';

const HEADER_BYTES = 24;

class LinearServer extends memjs.Server {
  private packets: Buffer[] = [];
  /** The socket corked until the end of the current tick, if any. */
  private corked: Socket | undefined;
  private buffered = 0;

  override responseHandler(data: Buffer): void {
    this.packets.push(data);
    this.buffered += data.byteLength;
    for (;;) {
      if (this.buffered < HEADER_BYTES) return;
      const head = this.peek(HEADER_BYTES);
      const total = HEADER_BYTES + head.readUInt32BE(8);
      if (this.buffered < total) return;
      const message = this.take(total);
      const response = memjs.Utils.parseMessage(message);
      this.dispatch(response);
    }
  }

  /**
   * Requests issued in one tick (a poll of several keys, a batch of deletes) leave in one writev:
   * under load every write syscall is a context switch to memcached. And no Nagle delay: small
   * requests are pipelined, Nagle would hold each one until the previous is acknowledged.
   */
  override sock(sasl: boolean, go: (socket: Socket) => void): void {
    super.sock(sasl, (socket) => {
      if (this.corked !== socket) {
        this.corked = socket;
        socket.cork();
        process.nextTick(() => {
          this.corked = undefined;
          socket.uncork();
        });
      }
      go(socket);
    });
    (this as unknown as { _socket?: Socket })._socket?.setNoDelay(true);
  }

  override error(err: Error): void {
    // A broken connection's partial response must not prefix the next connection's bytes.
    this.packets = [];
    this.buffered = 0;
    super.error(err);
  }

  /** Mirrors memjs' own dispatch of a parsed response. */
  private dispatch(response: memjs.Response & { header: { opcode: number; status: number } }): void {
    if (response.header.opcode === 0x20) this.saslAuth();
    else if (response.header.status === 0x20) this.error(new Error('Memcached server authentication failed!'));
    else if (response.header.opcode === 0x21) this.emit('authenticated');
    else (this as unknown as { respond(r: unknown): void }).respond(response);
  }

  /** The first n buffered bytes, copying only when they span packets (n is small). */
  private peek(n: number): Buffer {
    const first = this.packets[0]!;
    if (first.byteLength >= n) return first;
    return Buffer.concat(this.packets, n);
  }

  /** Removes and returns the first n bytes: a view when they lie in one packet, else one copy. */
  private take(n: number): Buffer {
    const first = this.packets[0]!;
    this.buffered -= n;
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.packets.shift();
      else this.packets[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.packets[0]!;
      const want = n - filled;
      if (p.byteLength <= want) {
        out.set(p, filled);
        filled += p.byteLength;
        this.packets.shift();
      } else {
        out.set(p.subarray(0, want), filled);
        this.packets[0] = p.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}

/** A memjs Client over one LinearServer connection to `hostPort`. */
export function createLinearClient(hostPort: string, options: memjs.ClientOptions & memjs.ServerOptions): memjs.Client {
  const i = hostPort.lastIndexOf(':');
  const server = new LinearServer(hostPort.slice(0, i), Number(hostPort.slice(i + 1)), undefined, undefined, options);
  return new memjs.Client([server], options);
}
