/** Deterministic test vectors: the same (seed, rank, round, length) gives the same floats in any process. */

/** xorshift32 over a seed mixed from several integers. */
function rng(...parts: number[]): () => number {
  let s = 0x9e3779b9;
  for (const p of parts) {
    s ^= (p + 0x7f4a7c15) | 0;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
    s ^= s >>> 16;
  }
  if (s === 0) s = 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** Floats in [-1, 1) with a varied exponent, so ordering mistakes in a sum show up in the bits. */
export function makeVector(seed: number, rank: number, round: number, length: number): Float32Array {
  const next = rng(seed, rank, round, length);
  const v = new Float32Array(length);
  for (let i = 0; i < length; i++) v[i] = (next() * 2 - 1) * (next() < 0.1 ? 1000 : 1);
  return v;
}
