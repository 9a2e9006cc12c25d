import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP proxy of our own between the service and MariaDB, to simulate an
 * outage: `cut()` destroys every connection and stops accepting (clients get
 * ECONNREFUSED); `restore()` listens again on the same port.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<number> {
    const server = createServer((client) => {
      if (this.stalled) {
        // a black hole: the connection opens, nothing ever answers
        this.sockets.add(client);
        client.on("close", () => this.sockets.delete(client));
        client.on("error", () => client.destroy());
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  /** The database becomes unreachable: open connections are reset, new ones refused. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The network drops every packet: connections stay open (or open) but nothing answers. */
  stall(): void {
    this.stalled = true;
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** The database is back, on the same address. */
  async restore(): Promise<void> {
    if (this.stalled) {
      this.stalled = false;
      await this.cut(); // stalled connections are dead; the service must reconnect
    }
    await this.start(this.port);
  }

  get connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
