/**
 * One memory-reducing garbage collection for a process that has just booted.
 *
 * Booting allocates ~26 MB (compiling the bundle, building schemas and the
 * OpenAPI document) and almost all of it survives its first scavenges, so V8
 * grows the young generation to its maximum (16 MB) on the way. An idle
 * service then holds that memory until V8's memory reducer notices the
 * idleness, ~15 s later: 83 MB of RSS at start against 66 MB once settled
 * (SQLite; MariaDB 88 against 68). Asking for the reducer's collection once,
 * before the server accepts connections, starts the service at the settled
 * figure; under load the young generation grows back as it always does.
 *
 * The request goes through the in-process inspector protocol
 * (`HeapProfiler.collectGarbage`, V8's low-memory notification): no port is
 * opened and no domain is enabled. A Node built without the inspector skips it.
 * Returns the collection's duration in ms, or undefined when skipped.
 */
export async function settleHeap(): Promise<number | undefined> {
  let inspector: typeof import("node:inspector/promises");
  try {
    inspector = await import("node:inspector/promises");
  } catch {
    return undefined;
  }
  const session = new inspector.Session();
  session.connect();
  try {
    const started = performance.now();
    await session.post("HeapProfiler.collectGarbage");
    return performance.now() - started;
  } finally {
    // Disconnecting from inside the protocol callback leaves the process unable to exit (Node 20); after the
    // awaited response it is safe.
    session.disconnect();
  }
}
