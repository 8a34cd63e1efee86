/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby's MurmurHash3_x86_32), over the UTF-8 bytes of
 * a string. Results are unsigned 32-bit integers and identical on every platform and process, so
 * a hashed feature lands in the same bucket at preprocessing and at serving time.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** MurmurHash3_x86_32 of `bytes[0, length)`. */
export function murmur3Bytes(bytes: Uint8Array, seed = 0, length = bytes.length): number {
  let h = seed >>> 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    // Little-endian 32-bit block, as the reference reads it on x86.
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h = mixH(h, mixK(k));
  }
  const rem = length & 3;
  if (rem > 0) {
    let k = bytes[blocks]!;
    if (rem >= 2) k ^= bytes[blocks + 1]! << 8;
    if (rem === 3) k ^= bytes[blocks + 2]! << 16;
    h ^= mixK(k);
  }
  return fmix(h ^ length);
}

/**
 * MurmurHash3_x86_32 of the UTF-8 encoding of `text`. ASCII strings (all of Criteo, most column
 * names) are hashed from their char codes directly, skipping the encoder.
 */
export function murmur3(text: string, seed = 0): number {
  const n = text.length;
  let ascii = true;
  for (let i = 0; i < n; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (!ascii) {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (scratch.length < 3 * n) scratch = new Uint8Array(3 * n);
    const { written } = encoder.encodeInto(text, scratch);
    return murmur3Bytes(scratch, seed, written);
  }
  let h = seed >>> 0;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 8) | (text.charCodeAt(i + 2) << 16) | (text.charCodeAt(i + 3) << 24);
    h = mixH(h, mixK(k));
  }
  const rem = n & 3;
  if (rem > 0) {
    let k = text.charCodeAt(blocks);
    if (rem >= 2) k ^= text.charCodeAt(blocks + 1) << 8;
    if (rem === 3) k ^= text.charCodeAt(blocks + 2) << 16;
    h ^= mixK(k);
  }
  return fmix(h ^ n);
}

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * murmur3(prefix + text.slice(start, end), seed) without building either string: the bytes go
 * into a reused scratch buffer. Feature hashing calls this once per categorical cell.
 */
export function murmur3Parts(prefix: string, text: string, start: number, end: number, seed = 0): number {
  const p = prefix.length;
  const n = p + end - start;
  if (scratch.length < 3 * n) scratch = new Uint8Array(3 * n);
  const buf = scratch;
  let ascii = true;
  for (let i = 0; i < p; i++) {
    const c = prefix.charCodeAt(i);
    if (c > 0x7f) ascii = false;
    buf[i] = c;
  }
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) ascii = false;
    buf[p + i - start] = c;
  }
  if (ascii) return murmur3Bytes(buf, seed, n);
  return murmur3(prefix + text.slice(start, end), seed);
}
