/**
 * Holds idle keep-alive HTTP connections to a server for the idle-connection
 * scenario of `pnpm bench`, in its own process so its file descriptors are
 * not the load generator's.
 *
 *   node --import tsx bench/idle-connections.ts <port> <count>[,<count>…]
 *
 * Each connection sends one `GET /health` (so the server holds a real HTTP
 * keep-alive connection, parser state included), reads the answer, then stays
 * open and silent. Opens up to each count in turn: prints `{"open":n,"failed":m}`
 * once that many are settled, and waits for a line on stdin before the next
 * count. After the last, holds them until stdin closes or SIGTERM.
 */
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

const port = Number(process.argv[2]);
const counts = process.argv[3]!.split(",").map(Number);
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
async function worker(count: number) {
  while (next < count) {
    next++;
    await openOne();
  }
}

const release = () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
};
process.stdin.on("end", release);
process.once("SIGTERM", release);

const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
for (const [i, count] of counts.entries()) {
  if (i > 0 && (await input.next()).done) break;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count - next) }, () => worker(count)));
  const open = sockets.filter((s) => !s.destroyed).length;
  process.stdout.write(`${JSON.stringify({ open, failed })}\n`);
}

