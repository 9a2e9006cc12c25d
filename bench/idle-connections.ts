/**
 * Holds idle keep-alive HTTP connections to a server for the idle-connection
 * scenario of `pnpm bench`, in its own process so its file descriptors are
 * not the load generator's.
 *
 *   node --import tsx bench/idle-connections.ts <port> <count>
 *
 * Each connection sends one `GET /health` (so the server holds a real HTTP
 * keep-alive connection, parser state included), reads the answer, then stays
 * open and silent. Prints `{"open":n,"failed":m}` once all are settled, then
 * holds them until stdin closes or SIGTERM.
 */
import { connect, type Socket } from "node:net";

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const CONCURRENCY = 200;
const REQUEST = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";

const sockets: Socket[] = [];
let failed = 0;

function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (ok) sockets.push(socket);
      else {
        failed++;
        socket.destroy();
      }
      resolve();
    };
    socket.setTimeout(20_000, () => settle(false));
    socket.once("connect", () => socket.write(REQUEST));
    socket.once("data", () => {
      socket.setTimeout(0);
      settle(true);
    });
    socket.once("error", () => settle(false));
    socket.once("close", () => settle(false));
  });
}

let next = 0;
async function worker() {
  while (next < count) {
    next++;
    await openOne();
  }
}

await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
const open = sockets.filter((s) => !s.destroyed).length;
process.stdout.write(`${JSON.stringify({ open, failed })}\n`);

const release = () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
};
process.stdin.on("end", release);
process.stdin.resume();
process.once("SIGTERM", release);
