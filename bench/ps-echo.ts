/**
 * A bare TCP server for the parameter-server benchmark's baseline: it does no work, it only moves
 * the same bytes. Frames are [u32 length][u8 kind][payload]: kind 1 (a push) is acknowledged with
 * an empty frame, kind 2 (a pull of k u32 indices) is answered with its own payload, which has the
 * size of the k f32 values a parameter server would return. Like the server it parses frames from
 * a stream and answers in order, with TCP_NODELAY on.
 */
import net from 'node:net';

export const ECHO_PUSH = 1;
export const ECHO_PULL = 2;

interface EchoServer {
  address: string;
  stop(): Promise<void>;
}

export function startEchoServer(host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let off = 0;
      const replies: Buffer[] = [];
      while (pending.length - off >= 5) {
        const len = pending.readUInt32LE(off);
        if (pending.length - off - 4 < len) break;
        const kind = pending[off + 4];
        const payload = pending.subarray(off + 5, off + 4 + len);
        const head = Buffer.allocUnsafe(4);
        if (kind === ECHO_PULL) {
          head.writeUInt32LE(payload.length);
          replies.push(head, payload);
        } else {
          head.writeUInt32LE(0);
          replies.push(head);
        }
        off += 4 + len;
      }
      if (replies.length > 0) {
        // Copy before the next chunk can overwrite `pending` (payload views point into it).
        socket.write(Buffer.concat(replies));
      }
      pending = off === pending.length ? Buffer.alloc(0) : pending.subarray(off);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      resolve({
        address: `${host}:${a.port}`,
        stop: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The benchmark's client side of the echo protocol: one connection, requests answered in order. */
export class EchoClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: Array<(payload: Buffer) => void> = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static connect(address: string): Promise<EchoClient> {
    const i = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(address.slice(i + 1)), address.slice(0, i), () => {
        socket.setNoDelay(true);
        resolve(new EchoClient(socket));
      });
      socket.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32LE(off);
      if (this.buf.length - off - 4 < len) break;
      this.waiting.shift()?.(this.buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }

  /** Sends one frame and resolves with the reply's payload. */
  request(kind: number, payload: Uint8Array): Promise<Buffer> {
    const head = Buffer.allocUnsafe(5);
    head.writeUInt32LE(payload.length + 1);
    head[4] = kind;
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(payload);
    this.socket.uncork();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}
