import { connect, type Socket } from "node:net";
import type { RequestSpec } from "./load.js";

/**
 * A lean HTTP/1.1 keep-alive client for the open-loop sender: requests are
 * written as pre-built bytes and answers are parsed only as far as the status
 * line and `content-length`. The sender shares a 2-core machine with the
 * server it measures; undici cost ~45 µs per request and allocated a 64 kB
 * buffer per socket read, and the sender's own full collections (every
 * ~0.5 s) showed up as the server's p99. One request in flight per
 * connection (no pipelining), like undici's pool; requests wait in one FIFO
 * for a free one.
 */
export type Done = (status: number) => void;

const HEADER_END = Buffer.from("\r\n\r\n");
/** an answer that takes longer counts as an error (status 0) */
const TIMEOUT_MS = 10_000;
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

/** The bytes of one request; a body gets `content-type: application/json`. */
export function encodeRequest(host: string, spec: RequestSpec): Buffer {
  const headers: Record<string, string> = { host, ...spec.headers };
  if (spec.body !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(spec.body));
  }
  let head = `${spec.method} ${spec.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return Buffer.from(head + "\r\n" + (spec.body ?? ""));
}

class Connection {
  private readonly socket: Socket;
  private done: Done | undefined;
  private dead = false;
  /** the answer's head read so far, while it spans reads */
  private head = "";
  /** status, and body bytes still to come, once the head is in */
  private status = 0;
  private remaining = -1;

  constructor(
    target: { hostname: string; port: number },
    private readonly pool: RawHttpPool,
  ) {
    // Reads land in one buffer per connection: no allocation per read (a
    // fresh 64 kB buffer per read made V8 run a full GC every ~0.5 s).
    this.socket = connect({
      port: target.port,
      host: target.hostname,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(64 * 1024),
        callback: (n: number, buffer: Uint8Array) => {
          this.read(buffer as Buffer, n);
          return true; // false would pause the socket
        },
      },
    });
    this.socket.setTimeout(TIMEOUT_MS, () => this.done && this.fail());
    this.socket.on("error", () => this.fail());
    this.socket.on("close", () => this.fail());
  }

  send(request: Buffer, done: Done) {
    this.done = done;
    this.socket.write(request);
  }

  private read(buffer: Buffer, n: number): void {
    if (!this.done) return this.fail(); // nothing was asked
    let body = n;
    if (this.remaining < 0) {
      const end = this.head ? -1 : buffer.subarray(0, n).indexOf(HEADER_END);
      let head: string;
      if (end >= 0) {
        head = buffer.toString("latin1", 0, end);
        body = n - end - 4;
      } else {
        // The head spans reads (rare): gather it as text; latin1 keeps one char per byte.
        this.head += buffer.toString("latin1", 0, n);
        const at = this.head.indexOf("\r\n\r\n");
        if (at < 0) return;
        head = this.head.slice(0, at);
        body = this.head.length - at - 4;
        this.head = "";
      }
      const length = CONTENT_LENGTH.exec(head);
      if (!length) return this.fail(); // every answer the bench reads has a content-length
      this.status = Number(head.slice(9, 12));
      this.remaining = Number(length[1]);
    }
    this.remaining -= body;
    if (this.remaining > 0) return;
    if (this.remaining < 0) return this.fail(); // one request in flight: nothing may follow its answer
    this.remaining = -1;
    const done = this.done;
    this.done = undefined;
    done(this.status);
    this.pool.released(this);
  }

  private fail() {
    if (this.dead) return;
    this.dead = true;
    const done = this.done;
    this.done = undefined;
    this.socket.destroy();
    this.pool.lost(this);
    done?.(0);
  }

  close() {
    this.dead = true;
    this.socket.destroy();
  }
}

export class RawHttpPool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly queue: { request: Buffer; done: Done }[] = [];
  private queueHead = 0;
  private closed = false;

  private readonly target: { hostname: string; port: number };

  constructor(
    url: URL,
    private readonly connections: number,
  ) {
    this.target = { hostname: url.hostname, port: Number(url.port) };
  }

  /** Sends `request` when a connection is free; `done` gets the status, or 0 for a socket error. */
  request(request: Buffer, done: Done) {
    const connection = this.idle.pop() ?? (this.all.size < this.connections ? this.open() : undefined);
    if (connection) connection.send(request, done);
    else this.queue.push({ request, done });
  }

  released(connection: Connection) {
    if (this.queueHead < this.queue.length) {
      const next = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      if (this.queueHead === this.queue.length) this.queue.length = this.queueHead = 0;
      connection.send(next.request, next.done);
    } else this.idle.push(connection);
  }

  lost(connection: Connection) {
    this.all.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    if (!this.closed && this.queueHead < this.queue.length) this.released(this.open());
  }

  private open(): Connection {
    const connection = new Connection(this.target, this);
    this.all.add(connection);
    return connection;
  }

  close() {
    this.closed = true;
    for (const connection of this.all) connection.close();
    this.all.clear();
    this.idle.length = 0;
  }
}
