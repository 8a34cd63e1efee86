/** The demo's input vectors: the same (rank, round, length) gives the same floats in any process. */

/** Floats in [-1, 1) from a 32-bit LCG, every tenth scaled by 1000 so that a sum in the wrong order shows in the bits. */
export function demoVector(rank: number, round: number, length: number): Float32Array {
  const v = new Float32Array(length);
  let s = (Math.imul(rank + 1, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca77)) >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = ((s / 4294967296) * 2 - 1) * (i % 10 === 0 ? 1000 : 1);
  }
  return v;
}
