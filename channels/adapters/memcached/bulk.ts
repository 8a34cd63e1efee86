/**
 * A minimal memcached binary-protocol connection for bulk values (large items, chunks, reads),
 * next to memjs.
 *
 * Why not memjs for these: memjs builds every request in a fresh zero-filled buffer (a copy of the
 * value), and its socket hands over a fresh buffer per packet that must be copied again into the
 * value. Under 4 processes on 2 cores that allocation churn is what V8's mark-compact GC spends its
 * time on. Here a SET goes out as a small header buffer plus the caller's bytes (corked, so one
 * writev and no copy), and a GET's value is read by the kernel straight into the caller's
 * destination (net.Socket `onread` with a buffer chosen per read); headers and small values go
 * through one small reused buffer.
 *
 * Requests are pipelined; memcached answers non-quiet binary requests in order, so responses are
 * matched to a FIFO queue (the opaque field double-checks it).
 */
import net from 'node:net';
import { ChannelError } from '../../errors.js';

const HEADER = 24;
const MAGIC_REQUEST = 0x80;
const MAGIC_RESPONSE = 0x81;
const OP_GET = 0x00;
const OP_SET = 0x01;
const OP_DELETE = 0x04;
const STATUS_OK = 0;
const STATUS_NOT_FOUND = 1;
/**
 * Reused receive buffer for headers and small values. The bytes of a value with a destination are
 * read straight into it (see nextReadBuffer), so at most this much of a large value is copied.
 */
const READ_BUFFER_BYTES = 16 * 1024;
/** Error messages in response bodies are short; longer ones are cut. */
const MAX_MESSAGE_BYTES = 1024;

/**
 * Where a GET's value goes, decided when the answer's header arrives (the value's length is then
 * known): pieces filled in order, whose lengths must add up to the value's, or undefined to only
 * measure the value.
 */
type Destination = (valueBytes: number) => Uint8Array[] | undefined;

interface Pending {
  opaque: number;
  op: number;
  key: string;
  /** GET only: where the value goes. */
  dest: Destination | undefined;
  deadline: number;
  resolve(length: number): void;
  reject(e: Error): void;
}

/** Parser of the response currently arriving. */
interface Incoming {
  status: number;
  /** Bytes of extras + key to skip before the value. */
  skip: number;
  valueBytes: number;
  /** Value bytes consumed so far. */
  got: number;
  /** Where the value is copied (status OK and the pieces' lengths add up), else undefined. */
  pieces: Uint8Array[] | undefined;
  message: Buffer | undefined;
}

export class BulkConnection {
  private socket: net.Socket | undefined;
  private readonly queue: Pending[] = [];
  private nextOpaque = 1;
  private readonly head = Buffer.alloc(HEADER);
  private headFill = 0;
  private incoming: Incoming | undefined;
  private timer: NodeJS.Timeout | undefined;
  private uncorkScheduled = false;
  /** The destination piece the socket's current read goes into, if any (see nextReadBuffer). */
  private direct: Uint8Array | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Stores `lead` (a few bytes, e.g. a tag) followed by `value` at `key` (no flags), expiring after ttlS seconds (0: never).
   * The value's bytes go to the socket as they are: they must stay unchanged until it resolves.
   */
  async set(key: string, value: Uint8Array, lead?: Uint8Array, ttlS = 0): Promise<void> {
    const keyBytes = Buffer.byteLength(key);
    const leadBytes = lead?.byteLength ?? 0;
    const header = Buffer.allocUnsafe(HEADER + 8 + keyBytes + leadBytes);
    writeRequestHeader(header, OP_SET, keyBytes, 8, leadBytes + value.byteLength, 0);
    header.writeUInt32BE(0, HEADER); // flags
    header.writeUInt32BE(ttlS, HEADER + 4); // expiry in seconds (memcached takes up to 30 days as relative)
    header.write(key, HEADER + 8, keyBytes, 'utf8');
    if (lead !== undefined) header.set(lead, HEADER + 8 + keyBytes);
    await this.request(OP_SET, key, header, value, undefined);
  }

  /**
   * Reads the item at `key` into `target` (and, when given, its tail into `rest`) when its length
   * equals the room given. Resolves with the item's length (so a mismatch is visible and nothing
   * is written), or -1 when the key is absent.
   */
  getInto(key: string, target: Uint8Array, rest?: Uint8Array): Promise<number> {
    const pieces = rest === undefined ? [target] : [target, rest];
    const room = target.byteLength + (rest?.byteLength ?? 0);
    return this.getWith(key, (n) => (n === room ? pieces : undefined));
  }

  /**
   * Reads the item at `key` into the pieces `dest` returns for its length (see Destination).
   * Resolves with the item's length, or -1 when the key is absent.
   */
  getWith(key: string, dest: Destination): Promise<number> {
    return this.request(OP_GET, key, keyRequest(OP_GET, key), undefined, dest);
  }

  /** Deletes `key`; resolves true when it existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.request(OP_DELETE, key, keyRequest(OP_DELETE, key), undefined, undefined)) >= 0;
  }

  /** Closes the socket after what is on the wire; requests still pending fail. */
  close(): void {
    this.fail(new ChannelError('CHANNEL_CLOSED', `memcached ${this.host}:${this.port}: connection closed`));
  }

  /** Fails every pending request and drops the socket (the next request reconnects). */
  fail(err: Error): void {
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
    this.reset();
    const pending = this.queue.splice(0);
    for (const p of pending) p.reject(err);
  }

  // ---- internals -------------------------------------------------------------------------------

  private request(op: number, key: string, header: Buffer, value: Uint8Array | undefined, dest: Destination | undefined): Promise<number> {
    const opaque = this.nextOpaque;
    this.nextOpaque = (this.nextOpaque + 1) >>> 0 || 1;
    header.writeUInt32BE(opaque, 12);
    return new Promise<number>((resolve, reject) => {
      const s = this.connection();
      this.queue.push({ opaque, op, key, dest, deadline: Date.now() + this.timeoutMs, resolve, reject });
      this.armTimer();
      // Cork until the end of this tick: a burst of requests leaves in one writev.
      if (!this.uncorkScheduled) {
        this.uncorkScheduled = true;
        s.cork();
        process.nextTick(() => {
          this.uncorkScheduled = false;
          s.uncork();
        });
      }
      s.write(header);
      if (value !== undefined && value.byteLength > 0) s.write(value);
    });
  }

  private connection(): net.Socket {
    if (this.socket) return this.socket;
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const s = net.connect({
      host: this.host,
      port: this.port,
      noDelay: true,
      onread: {
        // Node asks for the buffer of every read: the parser's state decides where it goes.
        buffer: () => this.nextReadBuffer(readBuffer),
        callback: (n: number, buf: Uint8Array) => {
          if (this.socket !== s) return true;
          if (buf === this.direct) this.consumeDirect(n);
          else this.consume(buf, n);
          return true;
        },
      },
    });
    s.on('error', (e) => {
      if (this.socket === s) this.fail(new ChannelError('CHANNEL_REQUEST', `memcached ${this.host}:${this.port}: ${e.message}`, { cause: e }));
    });
    s.on('close', () => {
      if (this.socket === s) this.fail(new ChannelError('CHANNEL_REQUEST', `memcached ${this.host}:${this.port}: connection closed by the server`));
    });
    this.socket = s;
    this.reset();
    return s;
  }

  private reset(): void {
    this.headFill = 0;
    this.incoming = undefined;
    this.uncorkScheduled = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One timer for the whole queue: it watches the oldest request's deadline. */
  private armTimer(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(1, this.queue[0]!.deadline - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const oldest = this.queue[0];
      if (oldest === undefined) return;
      if (oldest.deadline <= Date.now()) {
        this.fail(new ChannelError('CHANNEL_REQUEST', `memcached ${this.host}:${this.port}: no response to ${opName(oldest.op)} of '${oldest.key}' within ${this.timeoutMs} ms`));
      } else {
        this.armTimer();
      }
    }, wait);
    this.timer.unref();
  }

  /**
   * Where the next read goes: inside a value that has a destination, straight into the rest of
   * the destination piece being filled (no copy: the kernel writes the bytes in place; the piece
   * never reaches past the value, so the read cannot take the next response's bytes). Otherwise
   * into the reused read buffer, whose bytes the parser then copies.
   */
  private nextReadBuffer(readBuffer: Uint8Array): Uint8Array {
    this.direct = undefined;
    const inc = this.incoming;
    if (inc?.pieces !== undefined && inc.skip === 0 && inc.got < inc.valueBytes) {
      let start = 0;
      for (const piece of inc.pieces) {
        const end = start + piece.byteLength;
        if (inc.got < end) return (this.direct = piece.subarray(inc.got - start));
        start = end;
      }
    }
    return readBuffer;
  }

  /** `n` bytes of the current value were read in place (into this.direct). */
  private consumeDirect(n: number): void {
    const inc = this.incoming!;
    inc.got += n;
    if (inc.got === inc.valueBytes) this.endResponse();
  }

  /** Feeds `n` received bytes of `buf` (the reused read buffer) through the response parser. */
  private consume(buf: Uint8Array, n: number): void {
    let pos = 0;
    while (pos < n) {
      if (this.incoming === undefined) {
        const want = Math.min(HEADER - this.headFill, n - pos);
        this.head.set(buf.subarray(pos, pos + want), this.headFill);
        this.headFill += want;
        pos += want;
        if (this.headFill < HEADER) return;
        this.headFill = 0;
        if (!this.beginResponse()) return;
      }
      const inc = this.incoming!;
      if (inc.skip > 0) {
        const k = Math.min(inc.skip, n - pos);
        inc.skip -= k;
        pos += k;
        if (inc.skip > 0) return;
      }
      const k = Math.min(inc.valueBytes - inc.got, n - pos);
      if (k > 0) {
        if (inc.pieces !== undefined) place(inc.pieces, buf.subarray(pos, pos + k), inc.got);
        else if (inc.message !== undefined && inc.got < MAX_MESSAGE_BYTES) {
          const m = Math.min(k, MAX_MESSAGE_BYTES - inc.got);
          inc.message.set(buf.subarray(pos, pos + m), inc.got);
        }
        inc.got += k;
        pos += k;
      }
      if (inc.got === inc.valueBytes) this.endResponse();
    }
  }

  /** Parses the header in `this.head`; false when the stream is unusable (the connection failed). */
  private beginResponse(): boolean {
    const h = this.head;
    const p = this.queue[0];
    const opaque = h.readUInt32BE(12);
    if (h[0] !== MAGIC_RESPONSE || p === undefined || opaque !== p.opaque || h[1] !== p.op) {
      this.fail(new ChannelError('CHANNEL_REQUEST', `memcached ${this.host}:${this.port}: response out of step (magic ${h[0]}, opcode ${h[1]}, opaque ${opaque}, expected ${p ? `${opName(p.op)} ${p.opaque}` : 'none'})`));
      return false;
    }
    const status = h.readUInt16BE(6);
    const skip = h[4]! + h.readUInt16BE(2);
    const valueBytes = h.readUInt32BE(8) - skip;
    let pieces = status === STATUS_OK && p.dest !== undefined ? p.dest(valueBytes) : undefined;
    if (pieces !== undefined && pieces.reduce((sum, piece) => sum + piece.byteLength, 0) !== valueBytes) pieces = undefined;
    // Keep error messages (short) for the error; a GET hit without room is only measured.
    const message = status !== STATUS_OK ? Buffer.alloc(Math.min(valueBytes, MAX_MESSAGE_BYTES)) : undefined;
    this.incoming = { status, skip, valueBytes, got: 0, pieces, message };
    return true;
  }

  private endResponse(): void {
    const inc = this.incoming!;
    this.incoming = undefined;
    const p = this.queue.shift()!;
    if (this.timer && this.queue.length === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (inc.status === STATUS_OK) p.resolve(p.op === OP_GET ? inc.valueBytes : 0);
    else if (inc.status === STATUS_NOT_FOUND && p.op !== OP_SET) p.resolve(-1);
    else {
      const text = inc.message?.toString('latin1') || `status 0x${inc.status.toString(16)}`;
      p.reject(new ChannelError('CHANNEL_REQUEST', `memcached ${opName(p.op)} of '${p.key}' at ${this.host}:${this.port} failed: ${text}`));
    }
  }
}

/** Copies value bytes that start at value offset `at` into the pieces that cover them. */
function place(pieces: Uint8Array[], bytes: Uint8Array, at: number): void {
  let start = 0; // value offset of the current piece
  let from = 0; // bytes of `bytes` placed so far
  for (const piece of pieces) {
    const end = start + piece.byteLength;
    if (end > at + from) {
      const k = Math.min(end - (at + from), bytes.byteLength - from);
      piece.set(bytes.subarray(from, from + k), at + from - start);
      from += k;
      if (from === bytes.byteLength) return;
    }
    start = end;
  }
}

function writeRequestHeader(b: Buffer, op: number, keyBytes: number, extrasBytes: number, valueBytes: number, opaque: number): void {
  b[0] = MAGIC_REQUEST;
  b[1] = op;
  b.writeUInt16BE(keyBytes, 2);
  b[4] = extrasBytes;
  b[5] = 0; // data type
  b.writeUInt16BE(0, 6); // vbucket
  b.writeUInt32BE(extrasBytes + keyBytes + valueBytes, 8);
  b.writeUInt32BE(opaque, 12);
  b.writeUInt32BE(0, 16); // cas
  b.writeUInt32BE(0, 20);
}

/** A request that carries only a key (GET, DELETE). */
function keyRequest(op: number, key: string): Buffer {
  const keyBytes = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(HEADER + keyBytes);
  writeRequestHeader(b, op, keyBytes, 0, 0, 0);
  b.write(key, HEADER, keyBytes, 'utf8');
  return b;
}

function opName(op: number): string {
  return op === OP_GET ? 'get' : op === OP_SET ? 'set' : op === OP_DELETE ? 'delete' : `opcode ${op}`;
}

/** Splits 'host:port'. */
export function openBulkConnection(hostPort: string, timeoutMs: number): BulkConnection {
  const i = hostPort.lastIndexOf(':');
  return new BulkConnection(hostPort.slice(0, i), Number(hostPort.slice(i + 1)), timeoutMs);
}
