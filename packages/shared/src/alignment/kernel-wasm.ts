/**
 * WebAssembly SIMD alignment kernels, 10–20× faster than plain JS for float32
 * (4 float32 or 2 float64 lanes per instruction, native float32 arithmetic).
 *
 * The module is tiny and assembled here, byte by byte, at first use: no build
 * step, no dependency, no download. Synchronous compilation of a module this
 * small is allowed everywhere, browsers included. Where WebAssembly or its
 * SIMD proposal is unavailable (or compilation is forbidden, e.g. by a CSP)
 * `matmulWasm` returns false and kernel.ts uses the plain-JS kernels.
 *
 * Same summation contract as the JS kernels: each output is one SIMD lane,
 * accumulated over i ascending from 0 with a separate multiply and add
 * (WebAssembly never fuses them), rounded to the lane type after each
 * operation, so results are bit-identical to the naive references.
 *
 * Layout in linear memory, per chunk of rows (chunks keep memory bounded):
 *  - X: rows in blocks of MR = 4, interleaved: element (i, a) of a block at i*MR + a
 *    (rows past the end are zero);
 *  - B: the current k-block of W as column panels of NR values (NR = 8 float32
 *    or 4 float64, i.e. two v128 per tile row), zero-padded past column n;
 *  - C: output tiles (MR × NR, row-major) one after another, block by block.
 * The exported loop runs, for one k-block: every row block × every panel ×
 * the k-block's i, with the 4 × 2 v128 tile accumulators in registers.
 */

/** Rows per register tile. */
const MR = 4;
/** v128 vectors per tile row: NR = VECTORS × lanes. */
const VECTORS = 2;
/** k-block length: a packed block of W (KC × n) stays in L2 while every row block streams past it. */
const KC = 256;
/** Target linear-memory footprint; rows are processed in chunks to stay near it. */
const CHUNK_BYTES = 32 * 1024 * 1024;
/** Beyond this (a single row block needing it) the JS kernels are used instead. */
const MAX_BYTES = 1024 * 1024 * 1024;
const PAGE = 65536;
/** Row blocks per call into WebAssembly (see the call site). */
const BLOCKS_PER_CALL = 16;

// Minimal typings: `shared` compiles without the DOM lib, and @types/node does not declare WebAssembly.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}

/** (a, aStride, b, panelBytes, c, rowBlocks, panels, kBytesA) — all byte offsets/counts except the two counts. */
type LoopFn = (a: number, aStride: number, b: number, panelBytes: number, c: number, rowBlocks: number, panels: number, kBytesA: number) => void;

// ---- Encoding -------------------------------------------------------------

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, bytes: number[]): number[] => [id, ...uleb(bytes.length), ...bytes];
const name = (text: string): number[] => vector(Array.from(text, (ch) => [ch.charCodeAt(0)]));

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  ltU: [0x49],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  /** SIMD instruction: 0xfd prefix, LEB opcode, immediates. */
  simd: (code: number, ...immediates: number[]) => [0xfd, ...uleb(code), ...immediates],
};
const memarg = (alignLog2: number, offset: number): number[] => [...uleb(alignLog2), ...uleb(offset)];
const SIMD = { load: 0x00, load32Splat: 0x09, load64Splat: 0x0a, store: 0x0b, f32x4Add: 0xe4, f32x4Mul: 0xe6, f64x2Add: 0xf0, f64x2Mul: 0xf2 };

/** The body of the blocked loop for one lane type (element size 4 = f32x4, 8 = f64x2). */
function loopBody(elementSize: 4 | 8): number[] {
  const [mul, add, splat, splatAlign] =
    elementSize === 4 ? [SIMD.f32x4Mul, SIMD.f32x4Add, SIMD.load32Splat, 2] : [SIMD.f64x2Mul, SIMD.f64x2Add, SIMD.load64Splat, 3];
  // Parameters 0–7 (see LoopFn), then i32 locals, then v128 locals.
  const [A, A_STRIDE, B, PANEL_BYTES, C, ROW_BLOCKS, PANELS, K_BYTES_A] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [rb, p, bPanel, q, qEnd, bq] = [8, 9, 10, 11, 12, 13];
  const acc = (r: number, v: number) => 14 + r * VECTORS + v;
  const bVec = (v: number) => 14 + MR * VECTORS + v;
  const aSplat = 14 + MR * VECTORS + VECTORS;
  const code: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const part of parts) code.push(...part);
  };

  emit(op.i32(0), op.set(rb));
  emit(op.loop); // row blocks
  emit(op.get(B), op.set(bPanel), op.i32(0), op.set(p));
  emit(op.loop); // panels
  for (let r = 0; r < MR; r++) {
    for (let v = 0; v < VECTORS; v++) emit(op.get(C), op.simd(SIMD.load, ...memarg(4, (r * VECTORS + v) * 16)), op.set(acc(r, v)));
  }
  emit(op.get(A), op.tee(q), op.get(K_BYTES_A), op.add, op.set(qEnd), op.get(bPanel), op.set(bq));
  emit(op.loop); // i over the k-block, ascending
  for (let v = 0; v < VECTORS; v++) emit(op.get(bq), op.simd(SIMD.load, ...memarg(4, v * 16)), op.set(bVec(v)));
  for (let r = 0; r < MR; r++) {
    emit(op.get(q), op.simd(splat, ...memarg(splatAlign, r * elementSize)), op.set(aSplat));
    for (let v = 0; v < VECTORS; v++) {
      emit(op.get(acc(r, v)), op.get(aSplat), op.get(bVec(v)), op.simd(mul), op.simd(add), op.set(acc(r, v)));
    }
  }
  emit(op.get(bq), op.i32(VECTORS * 16), op.add, op.set(bq));
  emit(op.get(q), op.i32(MR * elementSize), op.add, op.tee(q), op.get(qEnd), op.ltU, op.brIf(0));
  emit(op.end);
  for (let r = 0; r < MR; r++) {
    for (let v = 0; v < VECTORS; v++) emit(op.get(C), op.get(acc(r, v)), op.simd(SIMD.store, ...memarg(4, (r * VECTORS + v) * 16)));
  }
  emit(op.get(C), op.i32(MR * VECTORS * 16), op.add, op.set(C));
  emit(op.get(bPanel), op.get(PANEL_BYTES), op.add, op.set(bPanel));
  emit(op.get(p), op.i32(1), op.add, op.tee(p), op.get(PANELS), op.ltU, op.brIf(0));
  emit(op.end);
  emit(op.get(A), op.get(A_STRIDE), op.add, op.set(A));
  emit(op.get(rb), op.i32(1), op.add, op.tee(rb), op.get(ROW_BLOCKS), op.ltU, op.brIf(0));
  emit(op.end);
  emit(op.end);
  const locals = vector([
    [...uleb(6), I32],
    [...uleb(MR * VECTORS + VECTORS + 1), V128],
  ]);
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/** Module: imports env.memory, exports `f32` and `f64` (both LoopFn). */
function buildModule(): Uint8Array {
  const types = section(1, vector([[0x60, ...vector(Array.from({ length: 8 }, () => [I32])), ...vector([])]]));
  const imports = section(2, vector([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(1)]]));
  const functions = section(3, vector([[0x00], [0x00]]));
  const exports = section(7, vector([[...name("f32"), 0x00, 0x00], [...name("f64"), 0x00, 0x01]]));
  const code = section(10, vector([loopBody(4), loopBody(8)]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...functions, ...exports, ...code]);
}

// ---- Instance -------------------------------------------------------------

interface WasmKernel {
  memory: WasmMemory;
  f32: LoopFn;
  f64: LoopFn;
}

let instance: WasmKernel | null | undefined;

function wasmKernel(): WasmKernel | null {
  if (instance !== undefined) return instance;
  instance = null;
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  try {
    const bytes = buildModule();
    if (api && api.validate(bytes)) {
      const memory = new api.Memory({ initial: 1 });
      const { exports } = new api.Instance(new api.Module(bytes), { env: { memory } });
      instance = { memory, f32: exports.f32 as LoopFn, f64: exports.f64 as LoopFn };
    }
  } catch {
    // Compilation refused (CSP, no SIMD): stay on the JS kernels.
  }
  return instance;
}

/** Whether this runtime runs the WebAssembly SIMD kernels. */
export function wasmSimdAvailable(): boolean {
  return wasmKernel() !== null;
}

/**
 * out = x · W with the WebAssembly SIMD loop. Returns false, touching nothing,
 * when WebAssembly SIMD is unavailable or the memory cannot be had; the
 * caller then uses the JS kernels. Sizes are not checked here; `chunkBytes`
 * (the linear-memory target) is a parameter only so tests can force chunking.
 */
export function matmulWasm<T extends Float32Array | Float64Array>(
  x: T,
  rows: number,
  k: number,
  w: T,
  n: number,
  out: T,
  chunkBytes = CHUNK_BYTES,
): boolean {
  const kernel = wasmKernel();
  if (!kernel) return false;
  const f32 = x instanceof Float32Array;
  const es = f32 ? 4 : 8;
  const nr = (VECTORS * 16) / es;
  const panels = Math.ceil(n / nr);
  const npad = panels * nr;
  const kcMax = Math.min(KC, k);
  const bBytes = kcMax * npad * es;
  const rowBytes = (k + npad) * es; // X plus C per row
  const chunkRows = Math.max(MR, Math.floor(Math.max(0, chunkBytes - bBytes) / rowBytes / MR) * MR);
  const rowsPerChunk = Math.min(chunkRows, Math.ceil(rows / MR) * MR);
  const need = bBytes + rowsPerChunk * rowBytes;
  if (need > MAX_BYTES) return false;
  const { memory } = kernel;
  if (memory.buffer.byteLength < need) {
    try {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    } catch {
      return false;
    }
  }
  const loop = f32 ? kernel.f32 : kernel.f64;
  const mem = f32 ? new Float32Array(memory.buffer) : new Float64Array(memory.buffer);
  const bOff = 0;
  const xOff = bBytes / es;
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const chunk = Math.min(rowsPerChunk, rows - r0);
    const rowBlocks = Math.ceil(chunk / MR);
    const cOff = xOff + rowBlocks * MR * k;
    // X, interleaved by row block; rows past the end of the chunk are zero.
    for (let r = 0; r < rowBlocks * MR; r++) {
      const d = xOff + (r - (r % MR)) * k + (r % MR);
      if (r < chunk) {
        const s = (r0 + r) * k;
        for (let i = 0; i < k; i++) mem[d + i * MR] = x[s + i]!;
      } else {
        for (let i = 0; i < k; i++) mem[d + i * MR] = 0;
      }
    }
    mem.fill(0, cOff, cOff + rowBlocks * MR * npad);
    for (let k0 = 0; k0 < k; k0 += KC) {
      const kc = Math.min(KC, k - k0);
      for (let p = 0; p < panels; p++) {
        const j0 = p * nr;
        const width = Math.min(nr, n - j0);
        let d = bOff + p * kc * nr;
        for (let i = k0; i < k0 + kc; i++) {
          const s = i * n + j0;
          for (let c = 0; c < nr; c++) mem[d + c] = c < width ? w[s + c]! : 0;
          d += nr;
        }
      }
      // Several short calls rather than one long one: V8 starts WebAssembly in its baseline
      // compiler and switches to optimized code only between calls (no on-stack replacement).
      for (let b0 = 0; b0 < rowBlocks; b0 += BLOCKS_PER_CALL) {
        const a = xOff + b0 * MR * k + k0 * MR;
        const c = cOff + b0 * panels * MR * nr;
        loop(a * es, k * MR * es, bOff * es, kc * nr * es, c * es, Math.min(BLOCKS_PER_CALL, rowBlocks - b0), panels, kc * MR * es);
      }
    }
    // C tiles back to row-major out.
    for (let r = 0; r < chunk; r++) {
      const block = (r - (r % MR)) / MR;
      const o = (r0 + r) * n;
      for (let p = 0; p < panels; p++) {
        const t = cOff + (block * panels + p) * MR * nr + (r % MR) * nr;
        const j0 = p * nr;
        const width = Math.min(nr, n - j0);
        for (let c = 0; c < width; c++) out[o + j0 + c] = mem[t + c]!;
      }
    }
  }
  return true;
}
