/**
 * Structured messages (events, manifests, metrics) as msgpack. The packer is created with
 * `moreTypes: true`: with msgpackr's defaults a Float32Array is written one byte per element and
 * comes back as corrupted bytes. Tensors themselves travel as tensor frames (codec.ts).
 */
import { Packr, isNativeAccelerationEnabled } from 'msgpackr';

const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

export function packMessage(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpackMessage<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/** Which msgpackr decoder runs: its compiled add-on, or the pure-JS path (bundled workers have no add-on). */
export function msgpackrPath(): 'native' | 'js' {
  return isNativeAccelerationEnabled ? 'native' : 'js';
}
