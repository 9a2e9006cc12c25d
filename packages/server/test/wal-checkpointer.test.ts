import { existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { openDatabase } from "../src/db/open-database.js";
import { startWalCheckpointer } from "../src/db/wal-checkpointer.js";
import { tempDatabaseFiles } from "./support/temp-files.js";

/**
 * WAL checkpoints leave the serving connection (where one took ~10 ms of
 * the event loop inside some request's commit) for a worker thread that
 * starts once the WAL has grown; a worker that cannot run hands them back.
 */

const databaseFile = tempDatabaseFiles("mx-wal-");

function walDatabase() {
  const file = databaseFile();
  const sqlite = new BetterSqlite3(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)");
  const insert = sqlite.prepare("INSERT INTO t (b) VALUES (?)");
  /** ~`kb` kB of rows, one commit per row */
  const write = (kb: number) => {
    for (let i = 0; i < kb / 4; i++) insert.run(Buffer.alloc(4000, i));
  };
  return { file, sqlite, write };
}

async function until(condition: () => boolean, what: string) {
  for (const started = Date.now(); !condition(); await new Promise((r) => setTimeout(r, 10)))
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
}

const autocheckpoint = (sqlite: BetterSqlite3.Database) => sqlite.pragma("wal_autocheckpoint", { simple: true });

describe("WAL checkpointer", () => {
  test("the connection never checkpoints; once the WAL grows a worker does, and stopping it closes its connection", async () => {
    const { file, sqlite, write } = walDatabase();
    const checkpointer = startWalCheckpointer(sqlite, file, { startAtBytes: 2 * 1024 * 1024, checkEveryMs: 10, idleEveryMs: 10 });
    expect(autocheckpoint(sqlite)).toBe(0);
    const emptySize = statSync(file).size;

    write(128);
    await new Promise((r) => setTimeout(r, 50));
    expect(checkpointer.state).toBe("waiting"); // below the threshold: no worker, nothing copied
    expect(statSync(file).size).toBe(emptySize);

    write(6000); // well past SQLite's own 1,000-page checkpoint
    expect(statSync(file).size).toBe(emptySize); // the commits themselves copied nothing
    await until(() => checkpointer.state === "running" && statSync(file).size > 5_000_000, "the worker's checkpoint");

    await checkpointer.stop();
    sqlite.close(); // the last connection to close removes the WAL: the worker's is closed
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  test("under continuous writes the WAL starts over: it stays near the catch-up size", async () => {
    const { file, sqlite, write } = walDatabase();
    const checkpointer = startWalCheckpointer(sqlite, file, { startAtBytes: 256 * 1024, catchUpAtBytes: 2 * 1024 * 1024, checkEveryMs: 10 });
    let largest = 0;
    for (let round = 0; round < 300; round++) {
      write(64); // ~200 kB of WAL a round, in commits of one row, with the event loop turning between rounds
      largest = Math.max(largest, statSync(`${file}-wal`).size);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(checkpointer.state).toBe("running");
    // Without the catch-up nothing starts the WAL over and it holds every frame written: ~60–80 MB here.
    // With it the file peaks a few MB past the 2 MiB catch-up size (~8 MB seen), however fast the writes come.
    expect(largest).toBeLessThan(20 * 1024 * 1024);
    await checkpointer.stop();
    sqlite.close();
  });

  test("a worker that cannot run hands checkpoints back to the connection", async () => {
    const { file, sqlite, write } = walDatabase();
    const checkpointer = startWalCheckpointer(sqlite, file, { startAtBytes: 64 * 1024, checkEveryMs: 10, driver: join(tmpdir(), "no-such-driver.js") });
    write(256);
    await until(() => checkpointer.state === "inline", "the fallback");
    expect(autocheckpoint(sqlite)).toBe(1000);
    await checkpointer.stop();
    sqlite.close();
  });

  test("openDatabase leaves checkpoints to it on a file, not on an in-memory database", async () => {
    const onFile = await openDatabase({ dialect: "sqlite", file: databaseFile() });
    const inMemory = await openDatabase({ dialect: "sqlite", file: ":memory:" });
    try {
      expect(onFile.dialect === "sqlite" && autocheckpoint(onFile.sqlite)).toBe(0);
      expect(inMemory.dialect === "sqlite" && autocheckpoint(inMemory.sqlite)).toBe(1000);
    } finally {
      await onFile.close();
      await inMemory.close();
    }
  });
});
