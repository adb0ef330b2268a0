/**
 * Piece records packed in one buffer: for each deflated piece, its input's fingerprint (16 bytes,
 * `piece-fingerprint.ts`), whether it ends its entry (1), where it sits in the archive (8, little-endian), its
 * length (4) and its CRC-32 (4).
 *
 * Why packed: as JavaScript arrays of hex strings an index cost about 1.5 KB per piece across the job's thread
 * and both deflate workers, and a next backup of the 2 GB database held 301–304 MB at peak against 228–235 MB
 * for a first one. Packed, a piece is 33 bytes, and the lookup table is one shared buffer for all threads.
 */
import { FINGERPRINT_BYTES } from "../engine/index.ts";

const F = FINGERPRINT_BYTES;
export const RECORD_BYTES = F + 17;
/** The fingerprint and the "last" byte: what a lookup compares. */
const KEY_BYTES = F + 1;

export interface PieceRecord {
  fingerprint: Uint8Array;
  last: boolean;
  offset: number;
  length: number;
  crc32: number;
}

/** Record `i` of `records`; its `fingerprint` is a view into them. */
export function recordAt(records: Uint8Array, i: number): PieceRecord {
  const at = i * RECORD_BYTES;
  const view = new DataView(records.buffer, records.byteOffset + at, RECORD_BYTES);
  return {
    fingerprint: records.subarray(at, at + F),
    last: records[at + F] === 1,
    offset: view.getUint32(F + 1, true) + view.getUint32(F + 5, true) * 2 ** 32,
    length: view.getUint32(F + 9, true),
    crc32: view.getUint32(F + 13, true),
  };
}

/** Writes `record` as record `i` of `records`. */
export function writeRecord(records: Uint8Array, i: number, record: PieceRecord): void {
  const at = i * RECORD_BYTES;
  const view = new DataView(records.buffer, records.byteOffset + at, RECORD_BYTES);
  records.set(record.fingerprint, at);
  records[at + F] = record.last ? 1 : 0;
  view.setUint32(F + 1, record.offset % 2 ** 32, true);
  view.setUint32(F + 5, Math.floor(record.offset / 2 ** 32), true);
  view.setUint32(F + 9, record.length, true);
  view.setUint32(F + 13, record.crc32 >>> 0, true);
}

/** How many records `records` holds. */
export function recordCount(records: Uint8Array): number {
  return records.length / RECORD_BYTES;
}

/** A list of records that grows as pieces are written. */
export class PieceRecordList {
  #records = new Uint8Array(RECORD_BYTES * 1024);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  push(record: PieceRecord): void {
    if ((this.#count + 1) * RECORD_BYTES > this.#records.length) {
      const grown = new Uint8Array(this.#records.length * 2);
      grown.set(this.#records);
      this.#records = grown;
    }
    writeRecord(this.#records, this.#count++, record);
  }

  /** The records so far, packed. */
  bytes(): Uint8Array {
    return this.#records.subarray(0, this.#count * RECORD_BYTES);
  }
}

/** How record `i` compares with a key (a fingerprint and whether the piece is last): fingerprint first, then "last". */
function compareKey(records: Uint8Array, i: number, fingerprint: Uint8Array, last: boolean): number {
  const at = i * RECORD_BYTES;
  for (let k = 0; k < F; k++) {
    const d = records[at + k]! - fingerprint[k]!;
    if (d !== 0) return d;
  }
  return records[at + F]! - (last ? 1 : 0);
}

/** The records sorted by key, in memory every thread can read (for `findRecord`). */
export function sortedRecords(records: Uint8Array): Uint8Array {
  const order = Array.from({ length: recordCount(records) }, (_, i) => i);
  order.sort((a, b) => {
    const x = a * RECORD_BYTES;
    const y = b * RECORD_BYTES;
    for (let k = 0; k < KEY_BYTES; k++) if (records[x + k] !== records[y + k]) return records[x + k]! - records[y + k]!;
    return 0;
  });
  const sorted = new Uint8Array(new SharedArrayBuffer(records.length));
  for (const [to, from] of order.entries()) sorted.set(records.subarray(from * RECORD_BYTES, (from + 1) * RECORD_BYTES), to * RECORD_BYTES);
  return sorted;
}

/** The number of the record in `sorted` with this key, if there is one (a binary search). */
export function findRecord(sorted: Uint8Array, fingerprint: Uint8Array, last: boolean): number | undefined {
  let low = 0;
  let high = recordCount(sorted) - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const c = compareKey(sorted, mid, fingerprint, last);
    if (c === 0) return mid;
    if (c < 0) low = mid + 1;
    else high = mid - 1;
  }
  return undefined;
}

/**
 * The number of the record in `sorted` with this key, if there is one and its piece is smaller than its input
 * (`inputLength`). A piece that came out no smaller (incompressible bytes, stored: `stored-pieces.ts`) is not
 * reused: storing it again is a copy on a deflate worker, while reusing it reads as many bytes back from the
 * earlier archive and checks their CRC-32 on the job's thread. On the bench's database of random blobs, a next
 * backup that reused such pieces took longer than the first one.
 */
export function findReusable(sorted: Uint8Array, fingerprint: Uint8Array, last: boolean, inputLength: number): number | undefined {
  const found = findRecord(sorted, fingerprint, last);
  return found !== undefined && recordAt(sorted, found).length < inputLength ? found : undefined;
}
