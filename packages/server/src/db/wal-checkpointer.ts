import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type BetterSqlite3 from "better-sqlite3";

/**
 * SQLite WAL checkpoints off the event loop.
 *
 * SQLite's automatic checkpoint runs inside the commit that takes the WAL past
 * 1,000 pages, and better-sqlite3 is synchronous: at ~700 publishes/s (each
 * commit writes ~20 pages) one request in ~70 held the event loop for ~10 ms
 * copying pages into the database file, and every request behind it waited
 * (server-side p99 9.8–13.8 ms; 1.4–1.5 ms with no checkpoint at all).
 * Smaller automatic checkpoints (100–200 pages) cost more in fixed work than
 * they saved, and the service fell behind.
 *
 * So the serving connection does not checkpoint by itself. A worker thread
 * with its own connection runs PASSIVE checkpoints, which never wait for or
 * block readers and writers, again 10 ms after one that copied something. A
 * WAL only starts over from its beginning when a write finds every frame
 * copied, which a checkpointer running beside the writes never achieves (the
 * WAL reached 725 MB in 12 s of publishes): when it holds more than
 * `catchUpAtBytes` of frames, the worker asks the serving connection to run
 * one checkpoint itself, which copies only the frames the worker has not
 * reached yet (~1–3 ms), and its next write starts the WAL over. The file is
 * not truncated (its high-water size is reused): truncating a 256 MB WAL took
 * ~100 ms inside a request.
 * Measured at 700 publishes/s: server-side p99 1.3–1.4 ms, p99.9 4.2–4.6 ms.
 *
 * A worker costs ~10 MB of RSS, so it starts only once the WAL has grown past
 * `startAtBytes` (about where SQLite would have checkpointed): a server that
 * reads, or writes little, never pays for it. If the worker cannot run, the
 * connection checkpoints by itself again (SQLite's default).
 */
export interface WalCheckpointerOptions {
  /** WAL file size that starts the worker (default 4 MiB, SQLite's 1,000 pages of 4 kB) */
  startAtBytes?: number;
  /** frames in the WAL (as bytes) at which the serving connection catches up itself so the WAL can start over (default 16 MiB) */
  catchUpAtBytes?: number;
  /** how often the WAL file's size is looked at until the worker starts (default 1 s) */
  checkEveryMs?: number;
  /** the worker's pause after a checkpoint that copied nothing (default 200 ms; 10 ms after one that did) */
  idleEveryMs?: number;
  /** the better-sqlite3 module the worker loads (tests point it elsewhere to make the worker fail) */
  driver?: string;
}

export interface WalCheckpointer {
  /** "waiting" for the WAL to grow, "running" in its worker, or "inline" (SQLite checkpoints in the connection again) */
  readonly state: "waiting" | "running" | "inline";
  /** Stops the worker (its connection closed) before the serving connection closes. */
  stop(): Promise<void>;
}

const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

// CommonJS run with `eval`: no file of its own to locate next to a bundle. Its connection lives as long as the worker.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("synchronous = NORMAL");
let backfilled = -1;
let askedAt = 0;
let timer;
const checkpoint = () => {
  let copied = false;
  try {
    const [{ log, checkpointed }] = db.pragma("wal_checkpoint(PASSIVE)");
    copied = checkpointed !== backfilled;
    backfilled = checkpointed;
    // A long WAL: the serving connection copies the last frames, so that its next write starts the WAL over
    // (asked again while the WAL stays long: its attempt finds this connection checkpointing now and then).
    if (log >= workerData.catchUpFrames && Date.now() - askedAt >= 100) {
      askedAt = Date.now();
      parentPort.postMessage("catch-up");
    }
  } catch {
    // another connection is checkpointing: the next round catches up
  }
  timer = setTimeout(checkpoint, copied ? 10 : workerData.idleEveryMs);
};
checkpoint();
parentPort.on("message", () => {
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

export function startWalCheckpointer(sqlite: BetterSqlite3.Database, file: string, options: WalCheckpointerOptions = {}): WalCheckpointer {
  const startAtBytes = options.startAtBytes ?? 4 * 1024 * 1024;
  const catchUpAtBytes = options.catchUpAtBytes ?? 16 * 1024 * 1024;
  const driver = options.driver ?? createRequire(import.meta.url).resolve("better-sqlite3");
  let state: WalCheckpointer["state"] = "waiting";
  let worker: Worker | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;

  const checkpointInline = () => {
    state = "inline";
    worker = undefined;
    if (!stopped && sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
  };
  const startWorker = () => {
    state = "running";
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, file, idleEveryMs: options.idleEveryMs ?? 200, catchUpFrames: Math.ceil(catchUpAtBytes / pageSize) },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    worker.unref();
    worker.on("message", () => {
      try {
        if (sqlite.open) sqlite.pragma("wal_checkpoint(PASSIVE)");
      } catch {
        // asked again while the WAL stays long
      }
    });
    worker.on("error", () => undefined); // its exit follows
    exited = new Promise((resolve) =>
      worker!.once("exit", () => {
        if (!stopped) checkpointInline();
        resolve();
      }),
    );
  };

  const pageSize = Number(sqlite.pragma("page_size", { simple: true }));
  sqlite.pragma("wal_autocheckpoint = 0");
  const watch = setInterval(() => {
    if ((statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) < startAtBytes) return;
    clearInterval(watch);
    startWorker();
  }, options.checkEveryMs ?? 1000);
  watch.unref();

  return {
    get state() {
      return state;
    },
    async stop() {
      stopped = true;
      clearInterval(watch);
      worker?.postMessage("stop");
      worker = undefined;
      await exited;
    },
  };
}
