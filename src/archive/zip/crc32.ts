/**
 * CRC-32 (IEEE), the checksum every zip entry carries: the runtime's native one where it has one (Bun's), else a
 * portable slicing-by-8 one, so that the archive core runs on Deno too. The writer hashes each chunk with it, and
 * readers check each entry's data against it.
 */

type Crc32 = (data: Uint8Array, previous?: number) => number;

const bunHash = (globalThis as { Bun?: { hash?: { crc32?: Crc32 } } }).Bun?.hash?.crc32;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  // slicing-by-8 tables: about 2 GB/s in JavaScript
  for (let n = 0; n < 256; n++) {
    let c = table[n]!;
    for (let k = 1; k < 8; k++) {
      c = table[c & 0xff]! ^ (c >>> 8);
      table[k * 256 + n] = c >>> 0;
    }
  }
  return table;
})();

/** Portable CRC-32 (IEEE), continuing from `previous`. */
export function crc32Portable(data: Uint8Array, previous = 0): number {
  const t = CRC_TABLE;
  let crc = ~previous >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    crc =
      t[7 * 256 + (a & 0xff)]! ^ t[6 * 256 + ((a >>> 8) & 0xff)]! ^ t[5 * 256 + ((a >>> 16) & 0xff)]! ^ t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + (b & 0xff)]! ^ t[2 * 256 + ((b >>> 8) & 0xff)]! ^ t[256 + ((b >>> 16) & 0xff)]! ^ t[(b >>> 24) & 0xff]!;
  }
  for (; i < n; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** CRC-32 (IEEE), continuing from `previous`: Bun's native one where there is one, else the portable one. */
export const crc32: Crc32 = bunHash ? (data, previous = 0) => bunHash(data, previous) >>> 0 : crc32Portable;

/** Which implementation `crc32` uses, for logs and benchmarks. */
export const crc32Implementation = bunHash ? "Bun.hash.crc32" : "portable";
