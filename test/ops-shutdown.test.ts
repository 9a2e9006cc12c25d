import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore, openDatabase, parseDatabaseUrl } from "@memory-exchange/server";
import { createTestDatabase, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { ensureServerBuilt, mintKey, startServerProcess, type ServerProcess } from "./support/server-process.js";

/**
 * SIGTERM while a multi-MB publish is still uploading: the server stops
 * accepting connections, lets the upload finish and answer 200, closes the
 * pool and exits 0. Past the grace period it gives up and exits 1.
 */

beforeAll(ensureServerBuilt, 600_000);

/** A valid KV cache of [2][8][128][64] float64 values per tensor: about 3 MB of JSON. */
function largePublishBody(): Buffer {
  const tensor = (offset: number) =>
    Array.from({ length: 2 }, (_, l) =>
      Array.from({ length: 8 }, (_, h) =>
        Array.from({ length: 128 }, (_, t) => Array.from({ length: 64 }, (_, d) => offset + l + h * 0.5 + t * 0.001 + d * 1e-7 + 0.123456)),
      ),
    );
  const input = {
    memoryType: "kv_cache",
    kvCacheData: { sourceModel: "llama-3-8b", keys: tensor(0), values: tensor(1) },
    price: 3.25,
    description: "published during shutdown",
  };
  return Buffer.from(JSON.stringify({ json: input }));
}

interface UploadResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Starts a POST and sends only the headers and the first half of the body; `finish` sends the rest slowly. */
function startUpload(url: string, path: string, key: string, body: Buffer, requestId: string) {
  const request = httpRequest(new URL(path, url), {
    method: "POST",
    // A keep-alive client, as load balancers and SDKs are: the server must still close the connection after the drain.
    agent: new Agent({ keepAlive: true }),
    headers: { "content-type": "application/json", "content-length": body.length, authorization: `Bearer ${key}`, "x-request-id": requestId },
  });
  const response = new Promise<UploadResponse>((resolve, reject) => {
    request.on("response", (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    request.on("error", reject);
  });
  response.catch(() => undefined);
  const half = Math.floor(body.length / 2);
  request.write(body.subarray(0, half));
  return {
    response,
    async finish() {
      for (let offset = half; offset < body.length; offset += 256 * 1024) {
        await new Promise<void>((resolve, reject) => request.write(body.subarray(offset, offset + 256 * 1024), (e) => (e ? reject(e) : resolve())));
        await new Promise((r) => setImmediate(r));
      }
      request.end();
    },
    destroy: () => request.destroy(),
  };
}

const tryConnect = (url: string) =>
  new Promise<string>((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    socket.on("connect", () => (socket.destroy(), resolve("connected")));
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });

/** The listener closes a moment after the signal (close hooks are async): retry a bounded number of times. */
async function newConnectionsRefused(url: string): Promise<string> {
  let outcome = "";
  for (let attempt = 0; attempt < 100 && outcome !== "ECONNREFUSED"; attempt++) {
    outcome = await tryConnect(url);
    if (outcome !== "ECONNREFUSED") await new Promise((r) => setTimeout(r, 20));
  }
  return outcome;
}

for (const dialect of await testDialects()) {
  describe(`graceful shutdown on ${dialect}`, () => {
    let database: TestDatabase;
    let env: Record<string, string>;
    let key: string;
    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      env = { DATABASE_URL: database.url };
      key = (await mintKey(env, 7)).key;
    });
    afterAll(() => database.drop());

    it("SIGTERM during a large publish: refuses new connections, completes the upload with 200, exits 0", async () => {
      // Level debug: the arrival of a request is logged ("incoming request"), which tells when the server has it.
      const server: ServerProcess = await startServerProcess({ ...env, MEMORY_EXCHANGE_LOG_LEVEL: "debug" });
      const body = largePublishBody();
      expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
      const upload = startUpload(server.url, "/trpc/memory.publish", key, body, "upload-during-shutdown");
      try {
        // The server has the request (headers parsed, body half-sent) before the signal.
        await server.waitForLine((l) => l.includes('"reqId":"upload-during-shutdown"') && l.includes("incoming request"));
        server.child.kill("SIGTERM");
        await server.waitForLine((l) => l.includes("shutting down"));
        expect(await newConnectionsRefused(server.url)).toBe("ECONNREFUSED");

        await upload.finish();
        const response = await upload.response;
        expect(response.status, response.body).toBe(200);
        expect(response.headers["x-request-id"]).toBe("upload-during-shutdown");
        expect(response.headers.connection).toBe("close");
        const memoryId = (JSON.parse(response.body) as { result: { data: { json: { memoryId: number } } } }).result.data.json.memoryId;

        expect(await server.exit).toEqual({ code: 0, signal: null });
        expect(server.stderr()).toBe("");
        expect(server.output.some((l) => l.includes("shutdown complete"))).toBe(true);

        // The listing was committed before the pool closed.
        const db = await openDatabase(parseDatabaseUrl(database.url));
        try {
          const listing = await createStore(db).findListing(memoryId);
          expect(listing).toMatchObject({ sellerId: 7, priceCents: 325, description: "published during shutdown" });
        } finally {
          await db.close();
        }
      } finally {
        upload.destroy();
        await server.stop();
      }
    });

    it("past MEMORY_EXCHANGE_SHUTDOWN_GRACE_MS an unfinished upload is abandoned and the exit code is 1", async () => {
      const server = await startServerProcess({ ...env, MEMORY_EXCHANGE_SHUTDOWN_GRACE_MS: "500", MEMORY_EXCHANGE_LOG_LEVEL: "debug" });
      const upload = startUpload(server.url, "/trpc/memory.publish", key, largePublishBody(), "stalled-upload");
      try {
        await server.waitForLine((l) => l.includes('"reqId":"stalled-upload"'));
        server.child.kill("SIGTERM");
        expect(await server.exit).toEqual({ code: 1, signal: null });
        expect(server.output.some((l) => l.includes("grace period elapsed"))).toBe(true);
      } finally {
        upload.destroy();
        await server.stop();
      }
    });

    it("SIGINT with idle keep-alive connections open exits 0", async () => {
      const server = await startServerProcess(env);
      const { hostname, port } = new URL(server.url);
      const socket = connect(Number(port), hostname);
      await new Promise((r) => socket.on("connect", r));
      socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
      await new Promise((r) => socket.once("data", r));
      server.child.kill("SIGINT");
      expect(await server.exit).toEqual({ code: 0, signal: null });
      socket.destroy();
    });
  });
}
