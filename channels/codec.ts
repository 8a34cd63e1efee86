/**
 * Tensor frames: a small self-describing header followed by the raw little-endian payload.
 *
 *   offset  size  field
 *   0       4     magic "CTNS"
 *   4       1     version (1)
 *   5       1     dtype code (see DTYPES)
 *   6       1     ndim (0..16)
 *   7       1     reserved (0)
 *   8       8     payload byte length (u64, little-endian)
 *   16      4*nd  shape, u32 each
 *   ...     pad   zeros up to a multiple of 8 bytes (so the payload is 8-byte aligned in the frame)
 *   H       n     payload
 *
 * Decoding returns a zero-copy view when the payload's address is aligned for its element size.
 */
import { FrameError } from './errors.js';

export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'int16' | 'uint16' | 'int8' | 'uint8';
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

interface DTypeInfo {
  code: number;
  bytes: number;
  make(buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  alloc(length: number): TypedArray;
}

const DTYPES: Record<DType, DTypeInfo> = {
  float32: { code: 1, bytes: 4, make: (b, o, n) => new Float32Array(b, o, n), alloc: (n) => new Float32Array(n) },
  float64: { code: 2, bytes: 8, make: (b, o, n) => new Float64Array(b, o, n), alloc: (n) => new Float64Array(n) },
  int32: { code: 3, bytes: 4, make: (b, o, n) => new Int32Array(b, o, n), alloc: (n) => new Int32Array(n) },
  uint32: { code: 4, bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n), alloc: (n) => new Uint32Array(n) },
  int16: { code: 5, bytes: 2, make: (b, o, n) => new Int16Array(b, o, n), alloc: (n) => new Int16Array(n) },
  uint16: { code: 6, bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n), alloc: (n) => new Uint16Array(n) },
  int8: { code: 7, bytes: 1, make: (b, o, n) => new Int8Array(b, o, n), alloc: (n) => new Int8Array(n) },
  uint8: { code: 8, bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n), alloc: (n) => new Uint8Array(n) },
};
const BY_CODE = new Map<number, DType>(Object.entries(DTYPES).map(([name, info]) => [info.code, name as DType]));

const FRAME_MAGIC = Uint8Array.of(0x43, 0x54, 0x4e, 0x53); // "CTNS"
const FRAME_VERSION = 1;
const FIXED_HEADER = 16;
const MAX_NDIM = 16;

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  // Frames are little-endian and decoded as views; a big-endian host would need byte swapping.
  throw new Error('cirrus-ts tensor frames require a little-endian host');
}

export interface Tensor<T extends TypedArray = TypedArray> {
  dtype: DType;
  shape: number[];
  data: T;
}

export function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  throw new TypeError('encodeTensor: unsupported array type (expected a numeric typed array)');
}

/** Size of the frame that encodes `count` elements of `dtype` in `ndim` dimensions. */
export function frameBytes(dtype: DType, count: number, ndim = 1): number {
  return headerBytes(ndim) + count * DTYPES[dtype].bytes;
}

export function headerBytes(ndim: number): number {
  return Math.ceil((FIXED_HEADER + 4 * ndim) / 8) * 8;
}

/**
 * Encodes `data` (shape defaults to [length]) into one frame: a fresh buffer, or `into` when it
 * has exactly the frame's size (callers that send many equal-sized frames reuse their buffers).
 */
export function encodeTensor(data: TypedArray, shape: number[] = [data.length], into?: Uint8Array): Uint8Array {
  const dtype = dtypeOf(data);
  if (shape.length > MAX_NDIM) throw new FrameError('FRAME_SHAPE', `encodeTensor: ${shape.length} dimensions, at most ${MAX_NDIM} allowed`);
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw new FrameError('FRAME_SHAPE', `encodeTensor: shape [${shape.join(', ')}] has an invalid dimension ${d}`);
    count *= d;
  }
  if (count !== data.length) {
    throw new FrameError('FRAME_SHAPE', `encodeTensor: shape [${shape.join(', ')}] holds ${count} elements but the array has ${data.length}`);
  }
  const h = headerBytes(shape.length);
  const frame = into && into.byteLength === h + data.byteLength ? into : new Uint8Array(h + data.byteLength);
  writeHeader(frame, dtype, shape, data.byteLength);
  frame.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h);
  return frame;
}

function writeHeader(frame: Uint8Array, dtype: DType, shape: number[], payloadBytes: number): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  frame.set(FRAME_MAGIC, 0);
  view.setUint8(4, FRAME_VERSION);
  view.setUint8(5, DTYPES[dtype].code);
  view.setUint8(6, shape.length);
  view.setUint8(7, 0);
  view.setBigUint64(8, BigInt(payloadBytes), true);
  shape.forEach((d, i) => view.setUint32(FIXED_HEADER + 4 * i, d, true));
}

export interface FrameHeader {
  dtype: DType;
  shape: number[];
  headerBytes: number;
  payloadBytes: number;
  /** headerBytes + payloadBytes: the exact length a complete frame must have. */
  frameBytes: number;
}

/** Parses and validates a frame header; `what` names the value in error messages (e.g. a key). */
export function readFrameHeader(bytes: Uint8Array, what = 'value'): FrameHeader {
  if (bytes.byteLength < 8) {
    if (bytes.byteLength < 4 || !hasMagic(bytes)) throw magicError(bytes, what);
    throw new FrameError('FRAME_TRUNCATED', `${what}: tensor frame truncated: ${bytes.byteLength} bytes, the header alone needs at least ${FIXED_HEADER}`);
  }
  if (!hasMagic(bytes)) throw magicError(bytes, what);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(4);
  if (version !== FRAME_VERSION) throw new FrameError('FRAME_VERSION', `${what}: tensor frame version ${version} is not supported (expected ${FRAME_VERSION})`);
  const dtype = BY_CODE.get(view.getUint8(5));
  if (!dtype) throw new FrameError('FRAME_DTYPE', `${what}: unknown dtype code ${view.getUint8(5)} (expected 1..${BY_CODE.size})`);
  const ndim = view.getUint8(6);
  if (ndim > MAX_NDIM) throw new FrameError('FRAME_SHAPE', `${what}: ${ndim} dimensions, at most ${MAX_NDIM} allowed`);
  const h = headerBytes(ndim);
  if (bytes.byteLength < h) throw new FrameError('FRAME_TRUNCATED', `${what}: tensor frame truncated: ${bytes.byteLength} bytes, its header needs ${h}`);
  const payloadBytes = Number(view.getBigUint64(8, true));
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(FIXED_HEADER + 4 * i, true);
    shape.push(d);
    count *= d;
  }
  if (count * DTYPES[dtype].bytes !== payloadBytes) {
    throw new FrameError('FRAME_SHAPE', `${what}: shape [${shape.join(', ')}] of ${dtype} needs ${count * DTYPES[dtype].bytes} payload bytes but the header says ${payloadBytes}`);
  }
  return { dtype, shape, headerBytes: h, payloadBytes, frameBytes: h + payloadBytes };
}

/** Decodes a frame. The result's data is a view into `bytes` whenever alignment allows. */
export function decodeTensor(bytes: Uint8Array, what = 'value'): Tensor {
  const head = readFrameHeader(bytes, what);
  if (bytes.byteLength < head.frameBytes) {
    throw new FrameError('FRAME_TRUNCATED', `${what}: tensor frame truncated: ${bytes.byteLength} bytes, expected ${head.frameBytes} (${head.dtype} [${head.shape.join(', ')}])`);
  }
  if (bytes.byteLength > head.frameBytes) {
    throw new FrameError('FRAME_LENGTH', `${what}: tensor frame has ${bytes.byteLength - head.frameBytes} trailing bytes beyond the ${head.frameBytes} its header declares`);
  }
  const info = DTYPES[head.dtype];
  const count = head.payloadBytes / info.bytes;
  const start = bytes.byteOffset + head.headerBytes;
  let data: TypedArray;
  if (start % info.bytes === 0) {
    data = info.make(bytes.buffer, start, count);
  } else {
    data = info.alloc(count);
    new Uint8Array(data.buffer).set(bytes.subarray(head.headerBytes, head.frameBytes));
  }
  return { dtype: head.dtype, shape: head.shape, data };
}

/** Decodes a frame that must hold float32 values (what the collectives exchange). */
export function decodeFloat32(bytes: Uint8Array, what = 'value'): Float32Array {
  const t = decodeTensor(bytes, what);
  if (t.dtype !== 'float32') throw new FrameError('FRAME_DTYPE', `${what}: expected a float32 tensor frame, found ${t.dtype}`);
  return t.data as Float32Array;
}

export function isTensorFrame(bytes: Uint8Array): boolean {
  return bytes.byteLength >= FIXED_HEADER && hasMagic(bytes);
}

function hasMagic(bytes: Uint8Array): boolean {
  return bytes[0] === FRAME_MAGIC[0] && bytes[1] === FRAME_MAGIC[1] && bytes[2] === FRAME_MAGIC[2] && bytes[3] === FRAME_MAGIC[3];
}

function magicError(bytes: Uint8Array, what: string): FrameError {
  const seen = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new FrameError('FRAME_MAGIC', `${what}: not a tensor frame: expected magic "CTNS" (43 54 4e 53) at byte 0, found ${seen ? `"${seen}"` : 'an empty value'}`);
}
