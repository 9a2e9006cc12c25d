/**
 * Worker-thread side of the alignment pool: receives one job at a time,
 * runs the shared kernel and posts the result back, transferring the output
 * buffer. A bad job (e.g. inconsistent dimensions) is answered with an error
 * and the worker keeps serving.
 */
import { parentPort } from "node:worker_threads";
import { alignmentMetrics, matmulF32, matmulF64, type AlignmentMetrics } from "@memory-exchange/shared";

export type AlignmentDtype = "float64" | "float32";

export interface AlignmentWorkerRequest {
  id: number;
  dtype: AlignmentDtype;
  x: Float64Array | Float32Array;
  rows: number;
  k: number;
  w: Float64Array | Float32Array;
  n: number;
}

export type AlignmentWorkerResponse =
  | { id: number; ok: true; out: Float64Array | Float32Array; metrics: AlignmentMetrics; computeMs: number }
  | { id: number; ok: false; error: { name: string; message: string } };

function compute(request: AlignmentWorkerRequest): { out: Float64Array | Float32Array; metrics: AlignmentMetrics } {
  const { dtype, x, rows, k, w, n } = request;
  let out: Float64Array | Float32Array;
  if (dtype === "float64" && x instanceof Float64Array && w instanceof Float64Array) {
    out = matmulF64(x, rows, k, w, n);
  } else if (dtype === "float32" && x instanceof Float32Array && w instanceof Float32Array) {
    out = matmulF32(x, rows, k, w, n);
  } else {
    throw new TypeError(`x and w must both be ${dtype === "float32" ? "Float32Array" : "Float64Array"} for dtype ${dtype}`);
  }
  return { out, metrics: alignmentMetrics(x, out, rows, k, n) };
}

const port = parentPort;
if (!port) throw new Error("alignment-worker must run in a worker thread");

port.on("message", (request: AlignmentWorkerRequest) => {
  let response: AlignmentWorkerResponse;
  try {
    const started = performance.now();
    const { out, metrics } = compute(request);
    response = { id: request.id, ok: true, out, metrics, computeMs: performance.now() - started };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    port.postMessage({ id: request.id, ok: false, error: { name: e.name, message: e.message } } satisfies AlignmentWorkerResponse);
    return;
  }
  port.postMessage(response, [response.out.buffer as ArrayBuffer]);
});
