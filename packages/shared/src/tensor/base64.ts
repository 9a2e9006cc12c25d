// Standard base64 (RFC 4648 §4, padded) over Uint8Array, without Node's Buffer
// or atob/btoa, so the client bundle works in browsers and strings stay ASCII.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENCODE = new Uint8Array(64);
const DECODE = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}
const PAD = 0x3d; // "="

const asciiDecoder = new TextDecoder();

export function encodeBase64(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  let i = 0;
  let o = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
    out[o++] = ENCODE[(v >>> 6) & 63]!;
    out[o++] = ENCODE[v & 63]!;
  }
  const left = n - i;
  if (left > 0) {
    const v = (bytes[i]! << 16) | (left === 2 ? bytes[i + 1]! << 8 : 0);
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
    out[o++] = left === 2 ? ENCODE[(v >>> 6) & 63]! : PAD;
    out[o++] = PAD;
  }
  return asciiDecoder.decode(out);
}

export type Base64DecodeResult = { ok: true; bytes: Uint8Array } | { ok: false; index: number; message: string };

/** Byte length that a padded base64 string of `textLength` characters decodes to, at most. */
export function base64DecodedLength(text: string): number {
  const n = text.length;
  if (n === 0) return 0;
  let pad = 0;
  if (text.charCodeAt(n - 1) === PAD) pad++;
  if (n > 1 && text.charCodeAt(n - 2) === PAD) pad++;
  return (n / 4) * 3 - pad;
}

/**
 * Strict decode: standard alphabet only (no whitespace, no URL-safe letters),
 * length a multiple of 4, padding only at the end, and zero unused bits, so
 * every accepted string is the canonical encoding of its bytes (re-encoding
 * gives the same text).
 */
export function tryDecodeBase64(text: string): Base64DecodeResult {
  const n = text.length;
  if (n % 4 !== 0) {
    return { ok: false, index: n, message: `base64 length ${n} is not a multiple of 4 (padding with "=" is required)` };
  }
  if (n === 0) return { ok: true, bytes: new Uint8Array(0) };
  let pad = 0;
  if (text.charCodeAt(n - 1) === PAD) pad = text.charCodeAt(n - 2) === PAD ? 2 : 1;
  const out = new Uint8Array((n / 4) * 3 - pad);
  const full = pad === 0 ? n : n - 4;
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const ca = text.charCodeAt(i);
    const cb = text.charCodeAt(i + 1);
    const cc = text.charCodeAt(i + 2);
    const cd = text.charCodeAt(i + 3);
    if ((ca | cb | cc | cd) > 0x7f) return invalidAt(text, i);
    const a = DECODE[ca]!;
    const b = DECODE[cb]!;
    const c = DECODE[cc]!;
    const d = DECODE[cd]!;
    if ((a | b | c | d) > 63) return invalidAt(text, i);
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (pad > 0) {
    const i = n - 4;
    const a = decodeChar(text, i);
    const b = decodeChar(text, i + 1);
    const c = pad === 1 ? decodeChar(text, i + 2) : 0;
    if ((a | b | c) > 63) return invalidAt(text, i);
    if (pad === 2 ? (b & 0x0f) !== 0 : (c & 0x03) !== 0) {
      return { ok: false, index: n - pad - 1, message: "base64 is not canonical: unused bits before the padding must be zero" };
    }
    out[o++] = (a << 2) | (b >>> 4);
    if (pad === 1) out[o++] = ((b & 0x0f) << 4) | (c >>> 2);
  }
  return { ok: true, bytes: out };
}

/** Strict decode that throws a SyntaxError on invalid input. */
export function decodeBase64(text: string): Uint8Array {
  const r = tryDecodeBase64(text);
  if (!r.ok) throw new SyntaxError(r.message);
  return r.bytes;
}

function decodeChar(text: string, i: number): number {
  const code = text.charCodeAt(i);
  return code > 0x7f ? 255 : DECODE[code]!;
}

function invalidAt(text: string, start: number): Base64DecodeResult {
  for (let i = start; i < start + 4; i++) {
    const code = text.charCodeAt(i);
    if (decodeChar(text, i) === 255) {
      const shown = code === PAD ? '"=" before the end' : JSON.stringify(text[i]);
      return { ok: false, index: i, message: `invalid base64 character ${shown} at offset ${i}` };
    }
  }
  return { ok: false, index: start, message: `invalid base64 at offset ${start}` };
}
