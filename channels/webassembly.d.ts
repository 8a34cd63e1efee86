/**
 * The few WebAssembly JS API members simd-reduce.ts uses. The project compiles without the DOM
 * library, where these types live, and Node's own types do not declare them.
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: object);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(deltaPages: number): number;
  }
  function validate(bytes: Uint8Array): boolean;
}
