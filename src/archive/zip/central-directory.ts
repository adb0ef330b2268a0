/**
 * The central directory as a zip writer builds it: each entry's record encoded as soon as its sizes and offset
 * are known, into one growing buffer, and written out whole at the end.
 *
 * Why packed: kept as an object per entry (with its name in an array of its own) until the archive ended, the
 * directory of a backup of 50 000 small uploads was about 8 MB of the job thread's live heap, and encoding it
 * all at once at the end made 50 000 more arrays (with a `DataView` and a promise each) beside the manifest. As
 * bytes it is the record itself, about 100 bytes an entry (46 and the name, more with zip64 or AES).
 */

import { CENTRAL_HEADER_SIGNATURE, EXTRA_AES, FLAG_DATA_DESCRIPTOR, FLAG_ENCRYPTED, FLAG_UTF8, MAX32, METHOD_AES } from "./format.ts";

/** The flags every entry here has: sizes and CRC in a data descriptor, UTF-8 names. */
export const FLAGS = FLAG_DATA_DESCRIPTOR | FLAG_UTF8;
/** Version 5.1: AES encryption (APPNOTE 4.4.3.2). */
export const VERSION_AES = 51;

/** What an entry's central record says: everything its local header and data descriptor say, and where it starts. */
export interface CentralRecord {
  /** The path, UTF-8. */
  name: Uint8Array;
  method: number;
  dosTime: number;
  dosDate: number;
  crc: number;
  compressed: number;
  uncompressed: number;
  /** Where the entry's local header starts in the archive. */
  offset: number;
  /** Whether its local header and descriptor have zip64 fields. */
  zip64: boolean;
  encrypted: boolean;
}

/** The version needed to extract: AES needs 5.1, zip64 4.5, else 2.0. */
export function versionNeeded(encrypted: boolean, zip64: boolean): number {
  return encrypted ? VERSION_AES : zip64 ? 45 : 20;
}

/** The WinZip AES extra field: AE-2, vendor "AE", strength 3 (AES-256), then the actual method. */
export function aesExtra(method: number): Uint8Array {
  const extra = new Uint8Array(11);
  const view = new DataView(extra.buffer);
  view.setUint16(0, EXTRA_AES, true);
  view.setUint16(2, 7, true);
  view.setUint16(4, 2, true);
  extra.set([0x41, 0x45], 6);
  view.setUint8(8, 3);
  view.setUint16(9, method, true);
  return extra;
}

/** Central records, packed in the order they are added. */
export class CentralDirectory {
  #bytes = new Uint8Array(64 * 1024);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;
  #count = 0;

  /** Records added. */
  get count(): number {
    return this.#count;
  }

  /** Encodes `entry`'s record after those added before it; `entry` is not kept. */
  add(entry: CentralRecord): void {
    const big = [entry.uncompressed >= MAX32, entry.compressed >= MAX32, entry.offset >= MAX32];
    const bigCount = big.filter(Boolean).length;
    const zip64Length = bigCount > 0 ? 4 + 8 * bigCount : 0;
    const aes = entry.encrypted ? aesExtra(entry.method) : undefined;
    const extraLength = zip64Length + (aes?.length ?? 0);
    const at = this.#reserve(46 + entry.name.length + extraLength);
    const r = this.#view;
    const needs64 = entry.zip64 || zip64Length > 0;
    r.setUint32(at, CENTRAL_HEADER_SIGNATURE, true);
    r.setUint16(at + 4, (3 << 8) | (entry.encrypted ? VERSION_AES : 45), true); // made by Unix, spec 4.5 (5.1 with AES)
    r.setUint16(at + 6, versionNeeded(entry.encrypted, needs64), true);
    r.setUint16(at + 8, entry.encrypted ? FLAGS | FLAG_ENCRYPTED : FLAGS, true);
    r.setUint16(at + 10, entry.encrypted ? METHOD_AES : entry.method, true);
    r.setUint16(at + 12, entry.dosTime, true);
    r.setUint16(at + 14, entry.dosDate, true);
    r.setUint32(at + 16, entry.crc, true);
    r.setUint32(at + 20, big[1] ? MAX32 : entry.compressed, true);
    r.setUint32(at + 24, big[0] ? MAX32 : entry.uncompressed, true);
    r.setUint16(at + 28, entry.name.length, true);
    r.setUint16(at + 30, extraLength, true);
    // 32–37 (comment length, disk, internal attributes) stay 0: the buffer is zeroed and written once.
    r.setUint32(at + 38, (0o100644 << 16) >>> 0, true); // a regular file, rw-r--r--
    r.setUint32(at + 42, big[2] ? MAX32 : entry.offset, true);
    this.#bytes.set(entry.name, at + 46);
    let extra = at + 46 + entry.name.length;
    if (zip64Length) {
      r.setUint16(extra, 1, true);
      r.setUint16(extra + 2, zip64Length - 4, true);
      extra += 4;
      for (const [i, value] of [entry.uncompressed, entry.compressed, entry.offset].entries()) {
        if (!big[i]) continue;
        r.setBigUint64(extra, BigInt(value), true);
        extra += 8;
      }
    }
    if (aes) this.#bytes.set(aes, extra);
    this.#count++;
  }

  /** Every record so far, in order: a view, valid until the next `add`. */
  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /** Room for `length` more bytes (zeroed), and where it starts. */
  #reserve(length: number): number {
    const at = this.#length;
    if (at + length > this.#bytes.length) {
      // Doubling: a few copies in all, and at most half the buffer unused.
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, at + length));
      grown.set(this.#bytes.subarray(0, at));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#length = at + length;
    return at;
  }
}
