import { Session } from "node:inspector";

/**
 * Runs V8's memory-reducing collection once (the one a low-memory
 * notification starts): a full collection that also shrinks the young
 * generation back to its initial size and returns free pages to the system.
 *
 * Why the server runs it before it listens: starting up allocates ~30 MB,
 * most of it kept (compiled code, schemas, routes), and V8 grows its young
 * generation to 8 MiB semi-spaces on the way. An idle server keeps those pages
 * until V8's memory reducer runs 25–45 s later; this gives it that settled
 * footprint from the start (README, Performance). It takes ~20–100 ms, once.
 *
 * Node's stable way to ask for it is the inspector protocol's
 * `HeapProfiler.collectGarbage` on an in-process session: no port is opened,
 * and `--expose-gc`'s `gc()` would run a plain full collection that keeps
 * the young generation's size.
 */
export async function compactHeap(): Promise<void> {
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => session.post("HeapProfiler.collectGarbage", (error) => (error ? reject(error) : resolve())));
  } finally {
    session.disconnect();
  }
}
