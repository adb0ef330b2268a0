/**
 * An entry's local header checked against its central record, and its bytes against every other entry's, in the
 * entry's turn, as zip.js's strict mode checks them when it reads an entry (`getData` with
 * `checkOverlappingEntryOnly`, zip.js 2.x, `zip-reader.js`: `validateLocalDirectory`, `validateDataDescriptor`,
 * `detectOverlappingEntry`), from the packed records of `archive-entries.ts` instead of zip.js's entry objects.
 *
 * Why ours: zip.js needs its entry object to check it, and keeps every entry it has checked (with a copy of its
 * local header) until the reader is dropped; for an archive of 50 000 small uploads those objects were most of a
 * restore's memory (figures in `archive-entries.ts`). The rules are zip.js's, rule for rule, and so are the
 * words of the errors readers report (`entryReadError`); `test/archive/local-headers.test.ts` holds the verdicts
 * to zip.js's own on mutants of a real archive.
 */
import { InvalidBackupError } from "../errors.ts";
import type { ArchiveEntry } from "./archive-entries.ts";
import {
  DATA_DESCRIPTOR_SIGNATURE,
  EXTRA_AES,
  EXTRA_ZIP64,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  FLAG_STRONG_ENCRYPTION,
  FLAG_UTF8,
  LOCAL_HEADER_BYTES,
  LOCAL_HEADER_SIGNATURE,
  MAX32,
  METHOD_AES,
  type ArchiveSourceReader,
} from "./zip/index.ts";

/** The flags a local header must share with its central record (zip.js's `BITFLAG_AMBIGUITY_MASK`). */
const FLAGS_THAT_MUST_AGREE = FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR | FLAG_STRONG_ENCRYPTION | FLAG_UTF8;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Where an entry's data lies, and where its bytes (data descriptor included) end. */
export interface EntryDataRange {
  /** The first byte of its data, past its local header. */
  start: number;
  /** Just past its data. */
  end: number;
  /** Just past its data descriptor, where it has one: where the next entry may begin. */
  rangeEnd: number;
}

/**
 * Reads entry's local header (and data descriptor) and checks them against its central record and the other
 * entries (`ranges`); returns where its data lies. Throws `InvalidBackupError` in the words readers used for
 * zip.js's refusals.
 * `directoryOffset` is where the central directory starts (`ZipReader.directoryOffset`): no data reaches past it.
 */
export async function checkedDataRange(source: ArchiveSourceReader, entry: ArchiveEntry, directoryOffset: number, ranges: EntryRanges): Promise<EntryDataRange> {
  const unreadable = () => new InvalidBackupError(`The entry ${entry.filename} cannot be read: the archive is corrupt or truncated.`);
  const disagrees = (what: string) =>
    new InvalidBackupError(`The entry ${entry.filename} disagrees with its central directory record (mismatched local file header (${what})): the archive is damaged or was altered.`);
  const head = await source.read(entry.offset, LOCAL_HEADER_BYTES);
  // zip.js reads only an entry whose AES extra field comes with method 99.
  if (entry.aesWrongMethod) throw unreadable();
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < LOCAL_HEADER_BYTES || view.getUint32(0, true) !== LOCAL_HEADER_SIGNATURE) throw unreadable();
  const flags = view.getUint16(6, true);
  const nameLength = view.getUint16(26, true);
  const extraLength = view.getUint16(28, true);
  const trailing = nameLength + extraLength ? await source.read(entry.offset + LOCAL_HEADER_BYTES, nameLength + extraLength) : new Uint8Array();
  const name = trailing.subarray(0, nameLength);
  const extra = extraFields(trailing.subarray(nameLength));
  const local = localRecord(view, flags, extra);

  if (name.length !== entry.rawFilename.length || name.some((byte, i) => byte !== entry.rawFilename[i])) throw disagrees("filename");
  if ((flags & FLAGS_THAT_MUST_AGREE) !== (entry.rawBitFlag & FLAGS_THAT_MUST_AGREE)) throw disagrees("general purpose bit flag");
  if (local.compressionMethod !== entry.compressionMethod) throw disagrees("compression method");
  const centralCrc32 = entry.crc32Known ? entry.crc32 : undefined;
  if ((flags & FLAG_DATA_DESCRIPTOR) === 0 && (local.crc32 || local.compressedSize || local.uncompressedSize) &&
    (local.crc32 !== centralCrc32 || local.compressedSize !== entry.compressedSize || local.uncompressedSize !== entry.uncompressedSize)) {
    throw disagrees("crc32 or sizes");
  }
  if (entry.encrypted && (entry.rawBitFlag & FLAG_STRONG_ENCRYPTION) !== 0) throw unreadable();

  const start = entry.offset + LOCAL_HEADER_BYTES + nameLength + extraLength;
  const end = start + entry.compressedSize;
  if (end > Math.min(source.size, directoryOffset)) throw unreadable();
  let rangeEnd = end;
  let descriptor: DataDescriptor | undefined;
  if ((entry.rawBitFlag & FLAG_DATA_DESCRIPTOR) !== 0) {
    const zip64 = entry.zip64 || extra.has(EXTRA_ZIP64);
    descriptor = await readDataDescriptor(source, end, centralCrc32, entry.compressedSize, entry.uncompressedSize, zip64);
    rangeEnd = end + (descriptor ? descriptorLength(descriptor.zip64, descriptor.signature) : descriptorLength(zip64, false));
  }
  if (ranges.overlaps(entry.offset, rangeEnd)) throw unreadable();
  if (descriptor && ((centralCrc32 !== undefined && descriptor.crc32 !== centralCrc32) ||
    descriptor.compressedSize !== entry.compressedSize || descriptor.uncompressedSize !== entry.uncompressedSize)) {
    throw disagrees("crc32 or sizes");
  }
  return { start, end, rangeEnd };
}

/**
 * Where the entries that are read begin, to hold each entry's bytes (local header to data descriptor) apart from
 * every other's: nothing but the entry itself may begin inside them. zip.js compares each entry with those it read
 * before; this compares it with all that will be read, so a pair that overlaps is refused whichever is read first.
 */
export class EntryRanges {
  readonly #starts: Float64Array;

  /** `starts`: the local header offsets of every entry to be read (the manifest's too). */
  constructor(starts: Float64Array) {
    this.#starts = starts.slice().sort();
  }

  /** Whether the bytes from `start` to `end` of the entry beginning at `start` reach another entry's. */
  overlaps(start: number, end: number): boolean {
    const starts = this.#starts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (starts[middle]! <= start) low = middle + 1;
      else high = middle;
    }
    // `low` is the first start after this one; the one before it is this entry's own, unless another shares it.
    if (low >= 2 && starts[low - 2] === start) return true;
    return low < starts.length && starts[low]! < end;
  }
}

interface LocalRecord {
  compressionMethod: number;
  crc32: number | undefined;
  compressedSize: number;
  uncompressedSize: number;
}

/** The local header's method, CRC-32 and sizes as zip.js reads them (`readCommonFooter`): AES and zip64 fields applied. */
function localRecord(view: DataView, flags: number, extra: Map<number, Uint8Array>): LocalRecord {
  const method = view.getUint16(8, true);
  const record: LocalRecord = { compressionMethod: method, crc32: view.getUint32(14, true), compressedSize: view.getUint32(18, true), uncompressedSize: view.getUint32(22, true) };
  const zip64 = extra.get(EXTRA_ZIP64);
  if (zip64) {
    // The 64-bit values of the fields that say 0xffffffff, uncompressed size first; left as they are if short.
    const missing = (["uncompressedSize", "compressedSize"] as const).filter((field) => record[field] === MAX32);
    if (zip64.length >= missing.length * 8) {
      const values = missing.map((_, i) => new DataView(zip64.buffer, zip64.byteOffset, zip64.byteLength).getBigUint64(i * 8, true));
      if (values.every((value) => value <= MAX_SAFE)) missing.forEach((field, i) => (record[field] = Number(values[i])));
    }
  }
  const aes = extra.get(EXTRA_AES);
  if (aes && (method === METHOD_AES || (flags & FLAG_ENCRYPTED) !== 0) && aes.length >= 7) {
    record.compressionMethod = aes[5]! | (aes[6]! << 8);
    if (aes[0] !== 1) record.crc32 = undefined; // AE-2 leaves the CRC-32 out
  }
  return record;
}

/** A local extra field's records by type, the last of a type winning, as zip.js reads them. */
function extraFields(bytes: Uint8Array): Map<number, Uint8Array> {
  const fields = new Map<number, Uint8Array>();
  for (let at = 0; at + 4 <= bytes.length; ) {
    const type = bytes[at]! | (bytes[at + 1]! << 8);
    const size = bytes[at + 2]! | (bytes[at + 3]! << 8);
    fields.set(type, bytes.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
  // A last record of 2 or 3 bytes: zip.js reads its type, then fails on its size and stops, keeping the others.
  return fields;
}

interface DataDescriptor {
  signature: boolean;
  zip64: boolean;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
}

const descriptorLength = (zip64: boolean, signature: boolean) => (zip64 ? 20 : 12) + (signature ? 4 : 0);

/**
 * The data descriptor after an entry's data, as zip.js finds it (`readLocalDataDescriptor`): of the four layouts
 * (zip64 or not, with a signature or not, `zip64`'s first), one whose sizes match, its CRC-32 too if one does; else
 * whatever the expected layout reads as.
 */
async function readDataDescriptor(source: ArchiveSourceReader, at: number, crc32: number | undefined, compressedSize: number, uncompressedSize: number, zip64: boolean): Promise<DataDescriptor | undefined> {
  const length = Math.min(24, Math.max(0, source.size - at));
  const bytes = length ? await source.read(at, length) : new Uint8Array();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const layouts: [boolean, boolean][] = [[zip64, true], [zip64, false], [!zip64, true], [!zip64, false]];
  const candidates = layouts.map(([wide, signature]) => descriptorAt(view, wide, signature))
    .filter((d): d is DataDescriptor => d !== undefined && d.compressedSize === compressedSize && d.uncompressedSize === uncompressedSize);
  return candidates.find((d) => d.crc32 === crc32) ?? candidates[0] ?? descriptorAt(view, zip64, true) ?? descriptorAt(view, zip64, false);
}

function descriptorAt(view: DataView, zip64: boolean, signature: boolean): DataDescriptor | undefined {
  const at = signature ? 4 : 0;
  if (view.byteLength < descriptorLength(zip64, signature) || (signature && view.getUint32(0, true) !== DATA_DESCRIPTOR_SIGNATURE)) return undefined;
  const crc32 = view.getUint32(at, true);
  if (!zip64) return { signature, zip64, crc32, compressedSize: view.getUint32(at + 4, true), uncompressedSize: view.getUint32(at + 8, true) };
  const compressed = view.getBigUint64(at + 4, true);
  const uncompressed = view.getBigUint64(at + 12, true);
  if (compressed > MAX_SAFE || uncompressed > MAX_SAFE) return undefined;
  return { signature, zip64, crc32, compressedSize: Number(compressed), uncompressedSize: Number(uncompressed) };
}
