// Tensors written as rectangular nested arrays of finite numbers (JSON form).
// Validation is a hand-written walk, not a schema per element: payloads reach
// millions of numbers and must be rejected early when over the limit.

export const MAX_TENSOR_RANK = 4;

export type TensorPath = (string | number)[];

/** "too_large" is an over-limit size (HTTP 413); anything else is "invalid" (400). */
export type TensorIssueCode = "invalid" | "too_large";

export type TensorFailure = { ok: false; path: TensorPath; message: string; code: TensorIssueCode };

export type NestedAnalysis = { ok: true; shape: number[]; elementCount: number } | TensorFailure;

export interface NestedLimits {
  maxElements: number;
  /** Defaults to 4. */
  maxRank?: number;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value); // NaN, Infinity, -Infinity
  if (typeof value === "string") return "a string";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function notFinite(path: TensorPath, value: unknown): TensorFailure {
  return { ok: false, path, message: `expected a finite number, got ${describe(value)}`, code: "invalid" };
}

function rowName(path: TensorPath): string {
  return path.length === 1 ? `row ${path[0]}` : `row [${path.join(", ")}]`;
}

/** Checks that `row` (found at `path`) is an array of exactly `length` items. */
function badRow(row: unknown, length: number, path: TensorPath): TensorFailure | undefined {
  if (!Array.isArray(row)) {
    return {
      ok: false,
      path,
      message: `expected an array of length ${length}, got ${describe(row)}`,
      code: "invalid",
    };
  }
  if (row.length !== length) {
    return {
      ok: false,
      path,
      message: `${rowName(path)} has length ${row.length}, expected ${length}`,
      code: "invalid",
    };
  }
  return undefined;
}

/** Index of the first element of `row` that is not a finite number, or -1. */
function firstNonFinite(row: unknown[], n: number): number {
  for (let i = 0; i < n; i++) if (!Number.isFinite(row[i])) return i;
  return -1;
}

/**
 * Validates a tensor given as nested arrays: rank 1..maxRank, non-empty and
 * rectangular at every level, every leaf a finite number, at most maxElements
 * leaves. The shape is read from the first element at each level and the
 * element limit is checked before walking, so the walk is bounded by it.
 */
export function analyzeNested(value: unknown, limits: NestedLimits): NestedAnalysis {
  const maxRank = limits.maxRank ?? MAX_TENSOR_RANK;
  if (!Array.isArray(value)) {
    return { ok: false, path: [], message: `expected a nested array of numbers, got ${describe(value)}`, code: "invalid" };
  }
  const shape: number[] = [];
  let count = 1;
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    const at = shape.map(() => 0);
    if (shape.length === maxRank) {
      return { ok: false, path: at, message: `tensor rank exceeds the maximum of ${maxRank}`, code: "invalid" };
    }
    if (probe.length === 0) {
      const message = at.length === 0 ? "tensor is empty" : `${rowName(at)} is empty`;
      return { ok: false, path: at, message, code: "invalid" };
    }
    shape.push(probe.length);
    count *= probe.length;
    if (count > limits.maxElements) {
      return {
        ok: false,
        path: [],
        message: `tensor has at least ${count} elements, over the limit of ${limits.maxElements}`,
        code: "too_large",
      };
    }
    probe = probe[0];
  }
  const failure = walk(value, shape);
  return failure ?? { ok: true, shape, elementCount: count };
}

// One loop nest per rank keeps the hot loop monomorphic and allocation-free;
// paths are only built once something is wrong.
function walk(value: unknown[], shape: number[]): TensorFailure | undefined {
  switch (shape.length) {
    case 1: {
      const i = firstNonFinite(value, shape[0]!);
      return i < 0 ? undefined : notFinite([i], value[i]);
    }
    case 2: {
      const [n0, n1] = shape as [number, number];
      for (let i = 0; i < n0; i++) {
        const row = value[i];
        const bad = badRow(row, n1, [i]);
        if (bad) return bad;
        const j = firstNonFinite(row as unknown[], n1);
        if (j >= 0) return notFinite([i, j], (row as unknown[])[j]);
      }
      return undefined;
    }
    case 3: {
      const [n0, n1, n2] = shape as [number, number, number];
      for (let i = 0; i < n0; i++) {
        const plane = value[i];
        const badPlane = badRow(plane, n1, [i]);
        if (badPlane) return badPlane;
        for (let j = 0; j < n1; j++) {
          const row = (plane as unknown[])[j];
          const bad = badRow(row, n2, [i, j]);
          if (bad) return bad;
          const k = firstNonFinite(row as unknown[], n2);
          if (k >= 0) return notFinite([i, j, k], (row as unknown[])[k]);
        }
      }
      return undefined;
    }
    case 4: {
      const [n0, n1, n2, n3] = shape as [number, number, number, number];
      for (let i = 0; i < n0; i++) {
        const cube = value[i];
        const badCube = badRow(cube, n1, [i]);
        if (badCube) return badCube;
        for (let j = 0; j < n1; j++) {
          const plane = (cube as unknown[])[j];
          const badPlane = badRow(plane, n2, [i, j]);
          if (badPlane) return badPlane;
          for (let k = 0; k < n2; k++) {
            const row = (plane as unknown[])[k];
            const bad = badRow(row, n3, [i, j, k]);
            if (bad) return bad;
            const l = firstNonFinite(row as unknown[], n3);
            if (l >= 0) return notFinite([i, j, k, l], (row as unknown[])[l]);
          }
        }
      }
      return undefined;
    }
    default:
      return walkAnyRank(value, shape, []);
  }
}

function walkAnyRank(value: unknown[], shape: number[], prefix: number[]): TensorFailure | undefined {
  const depth = prefix.length;
  const n = shape[depth]!;
  if (depth === shape.length - 1) {
    const i = firstNonFinite(value, n);
    return i < 0 ? undefined : notFinite([...prefix, i], value[i]);
  }
  const inner = shape[depth + 1]!;
  for (let i = 0; i < n; i++) {
    const child = value[i];
    const bad = badRow(child, inner, [...prefix, i]);
    if (bad) return bad;
    const failure = walkAnyRank(child as unknown[], shape, [...prefix, i]);
    if (failure) return failure;
  }
  return undefined;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Copies one innermost row into `out` at `offset`, storing −0 as 0. */
function copyRow(out: Float64Array, offset: number, row: number[], width: number): number {
  for (let i = 0; i < width; i++) out[offset + i] = row[i]! + 0;
  return offset + width;
}

/**
 * Row-major Float64Array of a nested tensor that analyzeNested accepted with
 * this shape. −0 is stored as 0: JSON output cannot tell them apart, and the
 * stored bytes should not differ for documents that read the same.
 */
export function flattenNested(value: unknown, shape: readonly number[]): Float64Array {
  const out = new Float64Array(product(shape));
  const rows = shape.length - 1;
  const width = shape[rows]!;
  let o = 0;
  switch (rows) {
    case 0:
      copyRow(out, 0, value as number[], width);
      break;
    case 1:
      for (const row of value as number[][]) o = copyRow(out, o, row, width);
      break;
    case 2:
      for (const plane of value as number[][][]) for (const row of plane) o = copyRow(out, o, row, width);
      break;
    case 3:
      for (const cube of value as number[][][][]) {
        for (const plane of cube) for (const row of plane) o = copyRow(out, o, row, width);
      }
      break;
    default: {
      const visit = (node: unknown[], depth: number): void => {
        if (depth === rows) o = copyRow(out, o, node as number[], width);
        else for (const child of node) visit(child as unknown[], depth + 1);
      };
      visit(value as unknown[], 0);
    }
  }
  return out;
}

/** Nested number arrays of `shape` from row-major `data` (the inverse of flattenNested). */
export function buildNested(data: Float64Array, shape: readonly number[]): unknown[] {
  if (shape.length === 0) throw new RangeError("shape must have at least one dimension");
  if (data.length !== product(shape)) {
    throw new RangeError(`data has ${data.length} elements, shape [${shape.join(", ")}] needs ${product(shape)}`);
  }
  let o = 0;
  const build = (depth: number): unknown[] => {
    const n = shape[depth]!;
    const node: unknown[] = [];
    if (depth === shape.length - 1) {
      for (let i = 0; i < n; i++) node.push(data[o++]);
    } else {
      for (let i = 0; i < n; i++) node.push(build(depth + 1));
    }
    return node;
  };
  return build(0);
}
