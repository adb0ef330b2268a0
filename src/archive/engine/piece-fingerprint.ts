/**
 * Pieces' fingerprints: the keyed hash of a piece's input that the deflate workers take of every piece they
 * deflate, by which the reuse cache (`reuse/block-reuse.ts`) finds an earlier archive's piece of the same input.
 */
import { createCipheriv, randomBytes } from "node:crypto";

/** Bytes in a piece's fingerprint, and in the key it is made with. */
export const FINGERPRINT_BYTES = 16;

/** A new secret key for a line of block indexes (each next backup keeps its predecessor's, `block-reuse.ts`). */
export function newFingerprintKey(): Uint8Array {
  return new Uint8Array(randomBytes(FINGERPRINT_BYTES));
}

/** One nonce for every piece: equal inputs must get equal fingerprints, or no lookup would find them. */
const NONCE = new Uint8Array(12);

/**
 * A piece's fingerprint under `key`: the tag AES-128-GCM gives the piece as associated data (GMAC), 16 bytes.
 *
 * Why not SHA-256: the fingerprints are only compared with each other, never shown, so a keyed hash does the
 * job, and GMAC ran at 10.7 GB/s here against 1.7 GB/s for SHA-256 (every deflated byte of every backup goes
 * through one; 0.3 core-seconds a backup on the bench's data).
 * Why it is safe: the tag is GHASH, a polynomial in a secret point, masked by one AES block. Two different
 * inputs of up to ℓ 16-byte blocks collide for at most ℓ + 1 of the 2^128 keys, so for inputs chosen without
 * the key (an app's rows, even a hostile user's) a collision has odds of about 2^-116 per pair: 2^-80 for an
 * index of 2^18 pieces matched against 2^18 new ones. The fixed nonce is what would let someone who sees two
 * tags solve for the key; the tags and the key live only in the index files (0600, beside the archives they
 * describe, which hold far more than the key protects). And a wrong piece could not pass unnoticed: the
 * archive's CRC-32s and manifest SHA-256s are computed from the input itself, so a restore or verify would
 * refuse it.
 */
export function pieceFingerprinter(key: Uint8Array): (piece: Uint8Array) => Uint8Array {
  if (key.length !== FINGERPRINT_BYTES) throw new Error(`A fingerprint key is ${FINGERPRINT_BYTES} bytes.`);
  return (piece) => {
    const gmac = createCipheriv("aes-128-gcm", key, NONCE);
    gmac.setAAD(piece);
    gmac.final();
    return gmac.getAuthTag();
  };
}
