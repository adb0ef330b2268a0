// A zip reader and writer of the tests' own, independent of zip.js and of src/archive: the fuzz tests use it to
// take real archives apart, put changed ones together, and say what an accepted archive really lists.
import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import { crc32Portable } from "../../src/archive/zip/index.ts";

/** One entry as its central record describes it, with its compressed bytes. */
export interface ModelEntry {
  name: Uint8Array;
  method: number;
  crc: number;
  size: number;
  data: Uint8Array;
  /** The high 16 bits of the external attributes: the Unix mode. */
  mode: number;
}

const text = new TextEncoder();
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const END = 0x06054b50;

/**
 * Reads a zip the plain way: the end record at the very end (its comment reaching the end of the file), then
 * exactly `count` central records filling exactly `cdSize` bytes at `cdOffset`, each pointing at a local header
 * with the same name. Anything else (zip64 included, which the tests' small archives never need) is undefined.
 */
export function parseZip(bytes: Uint8Array): ModelEntry[] | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === END && at + 22 + view.getUint16(at + 20, true) === bytes.length) {
      end = at;
      break;
    }
  }
  if (end < 0) return undefined;
  const count = view.getUint16(end + 10, true);
  const cdSize = view.getUint32(end + 12, true);
  const cdOffset = view.getUint32(end + 16, true);
  if (view.getUint16(end + 4, true) !== 0 || view.getUint16(end + 6, true) !== 0 || view.getUint16(end + 8, true) !== count) return undefined;
  if (count === 0xffff || cdOffset + cdSize !== end) return undefined;
  const entries: ModelEntry[] = [];
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || view.getUint32(at, true) !== CENTRAL) return undefined;
    const nameLength = view.getUint16(at + 28, true);
    const recordLength = 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    if (at + recordLength > end) return undefined;
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const offset = view.getUint32(at + 42, true);
    if (compressed === 0xffffffff || size === 0xffffffff || offset === 0xffffffff) return undefined;
    const name = bytes.slice(at + 46, at + 46 + nameLength);
    if (offset + 30 > cdOffset || view.getUint32(offset, true) !== LOCAL) return undefined;
    const localName = bytes.subarray(offset + 30, offset + 30 + view.getUint16(offset + 26, true));
    if (!sameBytes(localName, name)) return undefined;
    const dataStart = offset + 30 + view.getUint16(offset + 26, true) + view.getUint16(offset + 28, true);
    if (dataStart + compressed > cdOffset) return undefined;
    entries.push({
      name,
      method: view.getUint16(at + 10, true),
      crc: view.getUint32(at + 16, true),
      size,
      data: bytes.slice(dataStart, dataStart + compressed),
      mode: view.getUint32(at + 38, true) >>> 16,
    });
    at += recordLength;
  }
  return at === end ? entries : undefined;
}

/** A zip of these entries, in order: local headers with sizes (no data descriptors), central directory, end record. */
export function buildZip(entries: ModelEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const local = new Uint8Array(30 + entry.name.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, LOCAL, true);
    l.setUint16(4, 20, true);
    l.setUint16(6, 0x0800, true);
    l.setUint16(8, entry.method, true);
    l.setUint32(14, entry.crc >>> 0, true);
    l.setUint32(18, entry.data.length, true);
    l.setUint32(22, entry.size, true);
    l.setUint16(26, entry.name.length, true);
    local.set(entry.name, 30);
    const record = new Uint8Array(46 + entry.name.length);
    const c = new DataView(record.buffer);
    c.setUint32(0, CENTRAL, true);
    c.setUint16(4, (3 << 8) | 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(8, 0x0800, true);
    c.setUint16(10, entry.method, true);
    c.setUint32(16, entry.crc >>> 0, true);
    c.setUint32(20, entry.data.length, true);
    c.setUint32(24, entry.size, true);
    c.setUint16(28, entry.name.length, true);
    c.setUint32(38, (entry.mode << 16) >>> 0, true);
    c.setUint32(42, offset, true);
    record.set(entry.name, 46);
    parts.push(local, entry.data);
    central.push(record);
    offset += local.length + entry.data.length;
  }
  const cdSize = central.reduce((sum, r) => sum + r.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, END, true);
  e.setUint16(8, entries.length, true);
  e.setUint16(10, entries.length, true);
  e.setUint32(12, cdSize, true);
  e.setUint32(16, offset, true);
  return Buffer.concat([...parts, ...central, end]);
}

/** A stored entry holding `data`. */
export function storedEntry(name: string, data: Uint8Array): ModelEntry {
  return { name: text.encode(name), method: 0, crc: crc32Portable(data) >>> 0, size: data.length, data, mode: 0o100644 };
}

/** The entry's uncompressed bytes, by the tests' own inflate; undefined when they do not inflate. */
export function entryBytes(entry: ModelEntry): Uint8Array | undefined {
  try {
    if (entry.method === 0) return entry.data;
    if (entry.method === 8) return inflateRawSync(entry.data);
  } catch {
    // not deflate data
  }
  return undefined;
}

export const entryName = (entry: ModelEntry) => new TextDecoder().decode(entry.name);

export const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
