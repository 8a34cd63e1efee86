/**
 * The process-wide tfjs state behind the MLP's optional tfjs matmuls: which tfjs (if any) new MLPs
 * use. MLP matmul kernels are plain JS by default; after `await enableTfjsKernels()`, MLPs created
 * from then on run their dense matmuls through tfjs (WASM SIMD backend, or tfjs-node when it is the
 * active backend), about 5-7x faster on one core than the JS loops. Results then differ from the
 * JS path at float32 rounding level, so a reference run and a distributed run that must match
 * should make the same choice (the model's `kernels` field tells which it uses).
 */
import { ModelError } from '../models/base.js';

export type Tf = typeof import('@tensorflow/tfjs-core');
let tfjs: Tf | null = null;

/**
 * Loads tfjs-core with its WASM backend and makes the MLP use tfjs matmuls: keeps an already
 * active 'tensorflow' (tfjs-node) or 'wasm' backend, otherwise switches to 'wasm'. Resolves to the
 * backend name. A backend that cannot start is an error that says why (MODEL_BACKEND), never a
 * silent fallback to the 4-5x slower JS kernels: a packaged worker missing its .wasm files must
 * fail loudly. Callers that want the JS kernels create the MLP with kernels: 'js'.
 */
export async function enableTfjsKernels(): Promise<string> {
  let tf: Tf;
  try {
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new ModelError('MODEL_BACKEND', `tfjs could not be loaded for the MLP's matmuls: ${(err as Error).message}`);
  }
  const current = tf.getBackend();
  if (current !== 'tensorflow' && current !== 'wasm') {
    let ok = false;
    const warnings: string[] = [];
    // tfjs logs a failed backend init and resolves false; capture its reason for the error.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      for (const a of args) warnings.push((a instanceof Error ? a.message : String(a)).split('\n')[0]!);
    };
    let why = '';
    try {
      ok = await tf.setBackend('wasm');
      if (ok) await tf.ready();
    } catch (err) {
      why = (err as Error).message;
      ok = false;
    } finally {
      console.warn = warn;
    }
    why ||= warnings.join('; ') || 'tf.setBackend returned false';
    if (!ok) throw new ModelError('MODEL_BACKEND', `the tfjs WASM backend failed to start (${why}); its .wasm files must sit beside the worker's code (the Lambda package carries them)`);
  }
  tfjs = tf;
  return tf.getBackend();
}

/** Returns new MLPs to the JS kernels (tfjs stays loaded). */
export function disableTfjsKernels(): void {
  tfjs = null;
}

/** The tfjs backend new MLPs will use, or null for the JS kernels. */
export function tfjsKernelBackend(): string | null {
  return tfjs === null ? null : tfjs.getBackend();
}

/** The loaded tfjs new MLPs should use, or null for the JS kernels. */
export function activeTfjs(): Tf | null {
  return tfjs;
}
