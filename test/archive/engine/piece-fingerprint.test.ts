import { describe, expect, test } from "bun:test";
import { FINGERPRINT_BYTES, newFingerprintKey, pieceFingerprinter } from "../../../src/archive/engine/index.ts";
import { jsonRows } from "../../support/sample-data.ts";

describe("piece fingerprints", () => {
  const piece = jsonRows(47_663, 3);

  test("are the AES-128-GCM tag of the piece as associated data, as WebCrypto computes it", async () => {
    const key = newFingerprintKey();
    const webKey = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt"]);
    // With nothing to encrypt, what AES-GCM returns is the tag alone.
    const tag = await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: piece as Uint8Array<ArrayBuffer>, tagLength: 128 }, webKey, new Uint8Array(0));
    expect(new Uint8Array(pieceFingerprinter(key)(piece))).toEqual(new Uint8Array(tag));
    expect(tag.byteLength).toBe(FINGERPRINT_BYTES);
  });

  test("match for equal input under one key, and differ for a changed byte or another key", () => {
    const key = newFingerprintKey();
    const fingerprint = pieceFingerprinter(key);
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
    expect(hex(fingerprint(piece.slice()))).toBe(hex(fingerprint(piece)));
    const changed = piece.slice();
    changed[20_000]! ^= 1;
    expect(hex(fingerprint(changed))).not.toBe(hex(fingerprint(piece)));
    expect(hex(pieceFingerprinter(newFingerprintKey())(piece))).not.toBe(hex(fingerprint(piece)));
    // A piece and the same piece with a zero byte more (GHASH pads to 16 bytes; the length block tells them apart).
    const longer = new Uint8Array(piece.length + 1);
    longer.set(piece);
    expect(hex(fingerprint(longer))).not.toBe(hex(fingerprint(piece)));
  });

  test("keys are random, and a key of the wrong size is refused", () => {
    expect(newFingerprintKey()).not.toEqual(newFingerprintKey());
    expect(() => pieceFingerprinter(new Uint8Array(32))).toThrow("16 bytes");
  });
});
