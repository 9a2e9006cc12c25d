import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RawHttpPool, encodeRequest } from "../bench/raw-http.js";

/**
 * The benchmark's open-loop sender reads answers itself (status line and
 * content-length only); its p99 figures are only as good as that reading.
 * A plain TCP server here writes answers cut at awkward places.
 */

let server: Server | undefined;
const pools: RawHttpPool[] = [];
afterEach(() => {
  for (const pool of pools.splice(0)) pool.close();
  return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});
const openPool = (url: URL, connections: number) => {
  const pool = new RawHttpPool(url, connections);
  pools.push(pool);
  return pool;
};

/** A server that answers each request (one per connection at a time) with `answer(n)`, written in the given pieces. */
async function serve(answer: (n: number, request: string) => Buffer[]): Promise<URL> {
  let n = 0;
  server = createServer((socket: Socket) => {
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(received.slice(0, end))?.[1] ?? 0);
      if (received.length < end + 4 + length) return;
      const request = received.slice(0, end + 4 + length);
      received = received.slice(request.length);
      const pieces = answer(n++, request);
      pieces.forEach((piece, i) => setTimeout(() => socket.write(piece), i * 5));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return new URL(`http://127.0.0.1:${address.port}`);
}

const response = (status: number, body: string, extra = "") =>
  Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);

const send = (pool: RawHttpPool, request: Buffer) => new Promise<number>((resolve) => pool.request(request, resolve));

describe("bench raw HTTP sender", () => {
  it("reads answers whose head and body arrive in pieces, and reuses the connection", async () => {
    const body = "x".repeat(100_000); // more than one read buffer
    const url = await serve((n) => {
      const whole = response(n === 0 ? 200 : 201, body, "x-pad: y\r\n");
      return [whole.subarray(0, 7), whole.subarray(7, 30), whole.subarray(30, 50_000), whole.subarray(50_000)];
    });
    const pool = openPool(url, 1);
    const request = encodeRequest(url.host, { method: "GET", path: "/a" });
    expect(await send(pool, request)).toBe(200);
    expect(await send(pool, request)).toBe(201);
  });

  it("queues requests beyond its connections and sends the body with its length", async () => {
    const seen: string[] = [];
    const url = await serve((_n, request) => {
      seen.push(request);
      return [response(202, "ok")];
    });
    const pool = openPool(url, 2);
    const spec = { method: "POST" as const, path: "/p", headers: { authorization: "Bearer k" }, body: '{"a":"é"}' };
    const statuses = await Promise.all(Array.from({ length: 5 }, () => send(pool, encodeRequest(url.host, spec))));
    expect(statuses).toEqual([202, 202, 202, 202, 202]);
    expect(seen).toHaveLength(5);
    expect(seen[0]).toMatch(/^POST \/p HTTP\/1\.1\r\n/);
    expect(seen[0]).toContain("authorization: Bearer k\r\n");
    expect(seen[0]).toContain("content-length: 10\r\n"); // bytes, not characters
    expect(seen[0]!.endsWith('\r\n\r\n{"a":"é"}'.replace("é", "\xc3\xa9"))).toBe(true);
  });

  it("reports 0 for an answer without a length or a dropped connection, and goes on with a new connection", async () => {
    const url = await serve((n) =>
      n === 0 ? [Buffer.from("HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")] : [response(200, "fine")],
    );
    const pool = openPool(url, 1);
    const request = encodeRequest(url.host, { method: "GET", path: "/" });
    expect(await send(pool, request)).toBe(0);
    expect(await send(pool, request)).toBe(200);
  });
});
