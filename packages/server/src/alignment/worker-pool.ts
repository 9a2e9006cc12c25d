/**
 * A small bounded pool of worker threads running the alignment kernel, so a
 * large xW never blocks the event loop.
 *
 * - At most `size` workers, spawned on demand and kept until close().
 * - At most `maxQueue` jobs wait for a worker; beyond that `run` rejects at
 *   once with an AlignmentPoolError whose code is "BUSY" (callers map it to
 *   an overload response rather than letting latency grow without bound).
 * - Input buffers are transferred, not copied, when a typed array covers its
 *   whole ArrayBuffer (the caller's array is detached afterwards); pass
 *   `transfer: false` to keep them (they are then copied). SharedArrayBuffer
 *   inputs are shared as they are. The output buffer is transferred back.
 *
 * Worker entry: after `tsup` the bundled `alignment-worker.js` sits next to
 * this code in `dist/` and is used as is. Running from TypeScript sources
 * (vitest, tsx) there is no `.js` file, so the worker boots from a tiny eval
 * script that registers tsx and imports `alignment-worker.ts`, with the
 * "source" export condition so `@memory-exchange/shared` resolves to its
 * sources as it does in the parent. (Node 20 does not apply `--import tsx`
 * hooks to a worker's entry module, hence the explicit register.)
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { AlignmentMetrics } from "@memory-exchange/shared";
import type { AlignmentDtype, AlignmentWorkerRequest, AlignmentWorkerResponse } from "./alignment-worker.js";

export type { AlignmentDtype } from "./alignment-worker.js";

export interface AlignmentJob {
  dtype: AlignmentDtype;
  /** rows × k values, row-major: a typed array of the dtype, or the raw little-endian bytes. */
  x: Float64Array | Float32Array | ArrayBuffer | SharedArrayBuffer;
  rows: number;
  k: number;
  /** k × n values, row-major. */
  w: Float64Array | Float32Array | ArrayBuffer | SharedArrayBuffer;
  n: number;
  /** Transfer (detach) the input buffers to the worker instead of copying them. Default true. */
  transfer?: boolean;
}

export interface AlignmentResult {
  /** rows × n values in the job's dtype. */
  out: Float64Array | Float32Array;
  metrics: AlignmentMetrics;
  /** Time the worker spent in the kernel and metrics. */
  computeMs: number;
}

export interface AlignmentPoolOptions {
  /** Worker threads; default availableParallelism() - 1, at least 1. */
  size?: number;
  /** Jobs allowed to wait for a free worker; default 32. 0 = reject unless a worker is free. */
  maxQueue?: number;
}

export interface AlignmentPool {
  readonly size: number;
  readonly maxQueue: number;
  run(job: AlignmentJob): Promise<AlignmentResult>;
  /** Rejects queued and running jobs with code "CLOSED" and terminates the workers. */
  close(): Promise<void>;
  /** Live counters, for metrics and tests. */
  stats(): { workers: number; busy: number; queued: number };
}

export type AlignmentPoolErrorCode = "BUSY" | "CLOSED" | "WORKER_EXITED";

export class AlignmentPoolError extends Error {
  constructor(
    readonly code: AlignmentPoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AlignmentPoolError";
  }
}

interface Task {
  request: AlignmentWorkerRequest;
  transfer: ArrayBuffer[];
  resolve: (result: AlignmentResult) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

/** Where the worker code lives: the bundled file when built, the TypeScript source otherwise. */
function spawnAlignmentWorker(): Worker {
  const built = new URL("./alignment-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return new Worker(built);
  const source = new URL("./alignment-worker.ts", import.meta.url);
  if (!existsSync(fileURLToPath(source))) {
    throw new Error(`alignment worker not found next to ${import.meta.url}: build with the alignment-worker entry`);
  }
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source.href)}); });`;
  return new Worker(boot, { eval: true, execArgv: ["--conditions=source"] });
}

const ARRAY_TYPES = { float64: Float64Array, float32: Float32Array } as const;

/** Views `input` as the dtype's typed array and decides what to transfer. */
function toTyped(
  dtype: AlignmentDtype,
  input: AlignmentJob["x"],
  field: string,
  transfer: boolean,
  transferList: ArrayBuffer[],
): Float64Array | Float32Array {
  const Type = ARRAY_TYPES[dtype];
  let array: Float64Array | Float32Array;
  if (input instanceof ArrayBuffer || input instanceof SharedArrayBuffer) {
    if (input.byteLength % Type.BYTES_PER_ELEMENT !== 0) {
      throw new RangeError(`${field}: ${input.byteLength} bytes is not a whole number of ${dtype} values`);
    }
    array = dtype === "float64" ? new Float64Array(input) : new Float32Array(input);
  } else if (input instanceof Type) {
    array = input;
  } else {
    throw new TypeError(`${field} must be a ${Type.name} or an ArrayBuffer for dtype ${dtype}`);
  }
  const buffer = array.buffer;
  if (buffer instanceof SharedArrayBuffer) return array;
  if (!transfer) return array; // structured clone copies it
  if (array.byteOffset !== 0 || array.byteLength !== buffer.byteLength) {
    // A view into a larger buffer: transferring would detach unrelated data, so copy just the view.
    array = array.slice();
  }
  if (!transferList.includes(array.buffer as ArrayBuffer)) transferList.push(array.buffer as ArrayBuffer);
  return array;
}

/** Rebuilds an error thrown in the worker (RangeError for bad dimensions, TypeError for bad arrays). */
function workerError({ name, message }: { name: string; message: string }): Error {
  const error = name === "RangeError" ? new RangeError(message) : name === "TypeError" ? new TypeError(message) : new Error(message);
  if (error.name !== name) error.name = name;
  return error;
}

function positiveInt(value: number | undefined, fallback: number, min: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export function createAlignmentPool(options: AlignmentPoolOptions = {}): AlignmentPool {
  const size = positiveInt(options.size, Math.max(1, availableParallelism() - 1), 1, "size");
  const maxQueue = positiveInt(options.maxQueue, 32, 0, "maxQueue");
  const slots: Slot[] = [];
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;

  function addSlot(): Slot {
    const slot: Slot = { worker: spawnAlignmentWorker(), task: null };
    const { worker } = slot;
    worker.unref(); // an idle pool must not keep the process alive
    worker.on("message", (response: AlignmentWorkerResponse) => {
      const task = slot.task;
      if (!task || task.request.id !== response.id) return;
      slot.task = null;
      worker.unref();
      if (response.ok) {
        task.resolve({ out: response.out, metrics: response.metrics, computeMs: response.computeMs });
      } else {
        task.reject(workerError(response.error));
      }
      dispatch();
    });
    let failure: Error | undefined;
    worker.on("error", (error) => {
      failure = error;
    });
    worker.on("exit", (exitCode) => {
      const index = slots.indexOf(slot);
      if (index >= 0) slots.splice(index, 1);
      const task = slot.task;
      slot.task = null;
      if (task) {
        task.reject(
          closed
            ? new AlignmentPoolError("CLOSED", "alignment pool closed")
            : new AlignmentPoolError("WORKER_EXITED", `alignment worker exited (code ${exitCode})`, { cause: failure }),
        );
      }
      if (!closed) dispatch(); // replaces the worker if jobs are waiting
    });
    slots.push(slot);
    return slot;
  }

  function start(slot: Slot, task: Task): void {
    slot.task = task;
    slot.worker.ref();
    slot.worker.postMessage(task.request, task.transfer);
  }

  function dispatch(): void {
    while (queue.length > 0) {
      let slot = slots.find((s) => s.task === null);
      if (!slot) {
        if (slots.length >= size) return;
        try {
          slot = addSlot();
        } catch (error) {
          for (const task of queue.splice(0)) task.reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
      }
      start(slot, queue.shift()!);
    }
  }

  return {
    size,
    maxQueue,
    run(job) {
      return new Promise<AlignmentResult>((resolve, reject) => {
        if (closed) throw new AlignmentPoolError("CLOSED", "alignment pool closed");
        if (!Object.hasOwn(ARRAY_TYPES, job.dtype)) throw new TypeError(`dtype must be float64 or float32, got ${String(job.dtype)}`);
        const free = slots.length < size || slots.some((s) => s.task === null);
        if (!free && queue.length >= maxQueue) {
          throw new AlignmentPoolError("BUSY", `alignment pool busy: ${size} running, ${queue.length} queued`);
        }
        const transfer: ArrayBuffer[] = [];
        const x = toTyped(job.dtype, job.x, "x", job.transfer ?? true, transfer);
        const w = toTyped(job.dtype, job.w, "w", job.transfer ?? true, transfer);
        const request: AlignmentWorkerRequest = { id: nextId++, dtype: job.dtype, x, rows: job.rows, k: job.k, w, n: job.n };
        queue.push({ request, transfer, resolve, reject });
        dispatch();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      const error = new AlignmentPoolError("CLOSED", "alignment pool closed");
      for (const task of queue.splice(0)) task.reject(error);
      for (const slot of slots) {
        slot.task?.reject(error);
        slot.task = null;
      }
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    },
    stats() {
      return { workers: slots.length, busy: slots.filter((s) => s.task !== null).length, queued: queue.length };
    },
  };
}
