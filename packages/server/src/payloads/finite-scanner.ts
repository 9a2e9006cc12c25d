import { allFinite, dtypeByteSize, type SafetensorsHeader } from "@memory-exchange/shared";

interface Span {
  name: string;
  size: number;
  dtype: Parameters<typeof allFinite>[0];
  begin: number;
  end: number;
}

/** The data of a streamed file holds NaN or Infinity, or runs past the last tensor. */
export class TensorDataError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks that every element of a safetensors data buffer is finite while it
 * streams through in pieces of any size: an element split across two pieces
 * is carried over (at most 7 bytes), so nothing is buffered beyond that.
 */
export class FiniteScanner {
  private readonly spans: Span[];
  private index = 0;
  /** bytes of the data buffer seen so far */
  private position = 0;
  private readonly carry = new Uint8Array(8);
  private carryLength = 0;

  constructor(header: Pick<SafetensorsHeader, "tensors">) {
    this.spans = Object.entries(header.tensors)
      .map(([name, t]) => ({ name, dtype: t.dtype, size: dtypeByteSize(t.dtype), begin: t.begin, end: t.end }))
      .filter((s) => s.end > s.begin)
      .sort((a, b) => a.begin - b.begin);
  }

  /** Total data bytes the header describes. */
  get expectedBytes(): number {
    return this.spans.length === 0 ? 0 : this.spans[this.spans.length - 1]!.end;
  }

  get receivedBytes(): number {
    return this.position;
  }

  /** Feeds the next bytes of the data buffer; throws TensorDataError at the first bad element. */
  push(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.length) {
      const span = this.spans[this.index];
      if (!span) throw new TensorDataError("body", "the body runs past the end of the last tensor the header describes");
      const take = Math.min(bytes.length - offset, span.end - this.position);
      let piece = bytes.subarray(offset, offset + take);
      // First element index of `piece` within the tensor (after any carried bytes complete one).
      let element = (this.position - span.begin - this.carryLength) / span.size;
      if (this.carryLength > 0) {
        const need = span.size - this.carryLength;
        const used = Math.min(need, piece.length);
        this.carry.set(piece.subarray(0, used), this.carryLength);
        this.carryLength += used;
        piece = piece.subarray(used);
        if (this.carryLength === span.size) {
          this.check(span, this.carry.subarray(0, span.size), element);
          this.carryLength = 0;
          element += 1;
        }
      }
      const whole = piece.length - (piece.length % span.size);
      if (whole > 0) this.check(span, piece.subarray(0, whole), element);
      if (whole < piece.length) {
        this.carry.set(piece.subarray(whole), this.carryLength);
        this.carryLength += piece.length - whole;
      }
      offset += take;
      this.position += take;
      if (this.position === span.end) this.index += 1;
    }
  }

  /** Throws unless exactly the described number of bytes arrived. */
  finish(): void {
    if (this.position < this.expectedBytes) {
      throw new TensorDataError("body", `the body ends early: the header describes ${this.expectedBytes} data bytes, ${this.position} arrived`);
    }
  }

  private check(span: Span, bytes: Uint8Array, firstElement: number): void {
    const result = allFinite(span.dtype, bytes);
    if (!result.ok) {
      throw new TensorDataError(span.name, `element ${firstElement + result.index} of tensor "${span.name}" is not a finite number (NaN or Infinity)`);
    }
  }
}
