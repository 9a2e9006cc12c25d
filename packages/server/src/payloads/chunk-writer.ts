import { PAYLOAD_CHUNK_BYTES } from "../store/payload-store.js";

/**
 * Cuts a byte stream into store chunks of exactly PAYLOAD_CHUNK_BYTES (the
 * last may be shorter) and writes them in order. One write is in flight while
 * the next chunk fills, so the network and the database overlap; memory stays
 * at two chunk buffers whatever the payload size.
 */
export class ChunkWriter {
  private buffer: Buffer;
  private spare: Buffer | undefined;
  private filled = 0;
  private seq = 0;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly writeChunk: (seq: number, data: Uint8Array) => Promise<void>,
    private readonly chunkBytes = PAYLOAD_CHUNK_BYTES,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes);
  }

  /** Chunks written (or being written) so far. */
  get chunkCount(): number {
    return this.seq;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      const take = Math.min(bytes.length - offset, this.chunkBytes - this.filled);
      this.buffer.set(bytes.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.chunkBytes) await this.flushChunk();
    }
  }

  /** Writes the last, partial chunk and waits for every write. */
  async end(): Promise<void> {
    if (this.filled > 0) await this.flushChunk();
    await this.inFlight;
    this.inFlight = undefined;
  }

  /** Waits for a write in flight, ignoring its outcome (the upload is being abandoned). */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
  }

  private async flushChunk(): Promise<void> {
    // The previous write must finish before its buffer is reused (and its failure surfaces here).
    await this.inFlight;
    const full = this.buffer.subarray(0, this.filled);
    const seq = this.seq++;
    this.inFlight = this.writeChunk(seq, full);
    // Avoid an unhandled rejection while it runs unawaited; the next flush or end() awaits it.
    this.inFlight.catch(() => undefined);
    const next = this.spare ?? Buffer.allocUnsafe(this.chunkBytes);
    this.spare = this.buffer;
    this.buffer = next;
    this.filled = 0;
  }
}
