import { describe, expect, test } from "vitest";
import { decodeBase64, encodeBase64, tryDecodeBase64 } from "../src/tensor/index.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("base64", () => {
  test.each([
    ["", ""],
    ["f", "Zg=="],
    ["fo", "Zm8="],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="],
    ["foobar", "Zm9vYmFy"],
  ])("RFC 4648 vector %j", (plain, encoded) => {
    expect(encodeBase64(text(plain))).toBe(encoded);
    expect(decodeBase64(encoded)).toEqual(text(plain));
  });

  test("all byte values and lengths agree with Node's encoder (test-only reference)", () => {
    for (let n = 0; n < 300; n++) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      const expected = Buffer.from(bytes).toString("base64");
      expect(encodeBase64(bytes)).toBe(expected);
      expect(decodeBase64(expected)).toEqual(bytes);
    }
  });

  test("encodes a subarray view, not its whole buffer", () => {
    const host = new Uint8Array([1, 2, 3, 4, 5]);
    expect(encodeBase64(host.subarray(1, 4))).toBe(Buffer.from([2, 3, 4]).toString("base64"));
  });

  test.each([
    ["Zm9", "not a multiple of 4"],
    ["Zm9v\n", "not a multiple of 4"],
    ["Zm 9", 'invalid base64 character " "'],
    ["Zm-v", 'invalid base64 character "-"'], // URL-safe alphabet
    ["Zm_v", 'invalid base64 character "_"'],
    ["Zg=v", "invalid base64"],
    ["Z===", "invalid base64"],
    ["====", "invalid base64"],
    ["Zm9vé===", "invalid base64"],
    ["Zh==", "not canonical"], // unused bits set: "Zg==" is the canonical form
    ["Zm9=", "not canonical"],
    ["Zm8", "not a multiple of 4"], // padding required
  ])("rejects %j", (input, message) => {
    const r = tryDecodeBase64(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
    expect(() => decodeBase64(input)).toThrow(SyntaxError);
  });

  test("reports the offset of the bad character", () => {
    const r = tryDecodeBase64("AAAAAAA*");
    expect(r).toMatchObject({ ok: false, index: 7 });
  });
});
