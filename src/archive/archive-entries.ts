/**
 * The entries an archive's reader reads (its files and its manifest), packed once the central directory is
 * checked: what reading and checking each one takes (`local-headers.ts`, `entry-data.ts`), and what the manifest
 * lists for it, in typed arrays.
 *
 * Why not zip.js's entry objects: each holds some 60 fields (dates, attribute objects, extra-field maps, views of
 * its own copy of its central record, two closures), and a restore held one per entry from its first check to
 * its end, and then a copy of its local header beside it once read (zip.js keeps every entry it read, for its
 * overlap check). With the manifest's entries parsed into objects as well, a restore of 50 000 small uploads
 * peaked at 450–490 MB where a backup of the same data stays under 256 MB. Here an entry is its path (the string
 * zip.js decoded), its name's bytes, and about 60 bytes of numbers.
 */
import { Buffer } from "node:buffer";
import type { Entry } from "@zip.js/zip.js";
import type { ManifestHeader } from "./manifest-entries.ts";
import type { ManifestEntry } from "./manifest.ts";
import { METHOD_AES, type DeflateBlocks } from "./zip/index.ts";

const SHA256_BYTES = 32;
const FIRST_CAPACITY = 64;

/** An entry's traits, one bit each. */
const ENCRYPTED = 1;
/** zip.js leaves the CRC-32 out (an AES entry other than AE-1): its field is not compared. */
const CRC_UNKNOWN = 2;
/** The central record has a zip64 extra field: a data descriptor is read with 64-bit sizes first. */
const ZIP64 = 4;
/** The central record's AES extra field sits on an entry whose method is not 99 (AES): unsupported. */
const AES_WRONG_METHOD = 8;
/** The manifest lists the entry: its SHA-256 is in `digests`. */
const LISTED = 16;

/** One entry as the readers use it, made on demand from the packed records (`ArchiveEntries.at`). */
export interface ArchiveEntry {
  /** The entry's number among the records. */
  readonly index: number;
  readonly filename: string;
  /** The bytes of its name as the central record stores them (the local header must hold the same). */
  readonly rawFilename: Uint8Array;
  /** Where its local header starts. */
  readonly offset: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** The central record's CRC-32 field (zero-filled by AE-2, whose authentication code stands for it). */
  readonly crc32: number;
  /** Whether zip.js compares the CRC-32 fields (`crc32` is its `crc32`, not only its `signature`). */
  readonly crc32Known: boolean;
  readonly rawBitFlag: number;
  /** The method its data is compressed with: 0 or 8 (for an AES entry, the one its extra field names). */
  readonly compressionMethod: number;
  readonly encrypted: boolean;
  readonly zip64: boolean;
  /** A central AES extra field on an entry not marked as AES-encrypted (method 99): zip.js refuses to read it. */
  readonly aesWrongMethod: boolean;
}

/** An archive's entries to read, packed; `add` them in central-directory order. */
export class ArchiveEntries {
  readonly #names: string[] = [];
  #rawNames = new Uint8Array(FIRST_CAPACITY * 32);
  #rawNamesLength = 0;
  /** Per entry: where its name's bytes start in `#rawNames`, and where they end. */
  #rawNameBounds = new Float64Array(FIRST_CAPACITY * 2);
  /** Per entry: offset, compressed size, uncompressed size. */
  #numbers = new Float64Array(FIRST_CAPACITY * 3);
  #crc32s = new Uint32Array(FIRST_CAPACITY);
  #bitFlags = new Uint16Array(FIRST_CAPACITY);
  #methods = new Uint16Array(FIRST_CAPACITY);
  #traits = new Uint8Array(FIRST_CAPACITY);
  #digests = new Uint8Array(FIRST_CAPACITY * SHA256_BYTES);
  /** Deflate blocks the manifest lists, for the few entries deflated in more than one (large files). */
  readonly #blocks = new Map<number, DeflateBlocks>();

  get count(): number {
    return this.#names.length;
  }

  /** Adds a file entry as zip.js read its central record; returns its number. */
  add(entry: Entry): number {
    const i = this.#names.length;
    if (i === this.#traits.length) this.#grow(i * 2);
    const raw = entry.rawFilename;
    if (this.#rawNamesLength + raw.length > this.#rawNames.length) {
      const grown = new Uint8Array(Math.max(this.#rawNames.length * 2, this.#rawNamesLength + raw.length));
      grown.set(this.#rawNames.subarray(0, this.#rawNamesLength));
      this.#rawNames = grown;
    }
    this.#rawNames.set(raw, this.#rawNamesLength);
    this.#rawNameBounds[i * 2] = this.#rawNamesLength;
    this.#rawNamesLength += raw.length;
    this.#rawNameBounds[i * 2 + 1] = this.#rawNamesLength;
    this.#names.push(entry.filename);
    this.#numbers[i * 3] = entry.offset;
    this.#numbers[i * 3 + 1] = entry.compressedSize;
    this.#numbers[i * 3 + 2] = entry.uncompressedSize;
    const aes = (entry as { extraFieldAES?: { originalCompressionMethod?: number } }).extraFieldAES;
    this.#crc32s[i] = (entry.crc32 ?? entry.signature ?? 0) >>> 0;
    this.#bitFlags[i] = entry.rawBitFlag ?? 0;
    this.#methods[i] = entry.compressionMethod;
    this.#traits[i] = (entry.encrypted ? ENCRYPTED : 0) | (entry.crc32 === undefined ? CRC_UNKNOWN : 0) |
      ((entry as { extraFieldZip64?: unknown }).extraFieldZip64 ? ZIP64 : 0) |
      (aes && aes.originalCompressionMethod !== METHOD_AES ? AES_WRONG_METHOD : 0);
    return i;
  }

  filename(i: number): string {
    return this.#names[i]!;
  }

  /** The length of entry `i`'s name in bytes, as stored. */
  rawFilenameLength(i: number): number {
    return this.#rawNameBounds[i * 2 + 1]! - this.#rawNameBounds[i * 2]!;
  }

  offset(i: number): number {
    return this.#numbers[i * 3]!;
  }

  compressedSize(i: number): number {
    return this.#numbers[i * 3 + 1]!;
  }

  uncompressedSize(i: number): number {
    return this.#numbers[i * 3 + 2]!;
  }

  /** Entry `i` as an object, for the time it is read. */
  at(i: number): ArchiveEntry {
    const traits = this.#traits[i]!;
    return {
      index: i,
      filename: this.#names[i]!,
      rawFilename: this.#rawNames.subarray(this.#rawNameBounds[i * 2]!, this.#rawNameBounds[i * 2 + 1]!),
      offset: this.offset(i),
      compressedSize: this.compressedSize(i),
      uncompressedSize: this.uncompressedSize(i),
      crc32: this.#crc32s[i]!,
      crc32Known: (traits & CRC_UNKNOWN) === 0,
      rawBitFlag: this.#bitFlags[i]!,
      compressionMethod: this.#methods[i]!,
      encrypted: (traits & ENCRYPTED) !== 0,
      zip64: (traits & ZIP64) !== 0,
      aesWrongMethod: (traits & AES_WRONG_METHOD) !== 0,
    };
  }

  /** Records what the manifest lists for entry `i`: its SHA-256 (hex) and, where it has them, its deflate blocks. */
  setListed(i: number, sha256: string, blocks?: DeflateBlocks): void {
    this.#digests.set(Buffer.from(sha256, "hex"), i * SHA256_BYTES);
    this.#traits[i]! |= LISTED;
    if (blocks) this.#blocks.set(i, blocks);
  }

  /** The SHA-256 (hex) the manifest lists for entry `i`, if it lists the entry. */
  listedSha256(i: number): string | undefined {
    if ((this.#traits[i]! & LISTED) === 0) return undefined;
    return Buffer.from(this.#digests.buffer, this.#digests.byteOffset + i * SHA256_BYTES, SHA256_BYTES).toString("hex");
  }

  /** The deflate blocks the manifest lists for entry `i`. */
  listedBlocks(i: number): DeflateBlocks | undefined {
    return this.#blocks.get(i);
  }

  /** What the manifest lists for the entries it lists, as objects, in the archive's order. */
  listedEntries(): ManifestEntry[] {
    const entries: ManifestEntry[] = [];
    for (let i = 0; i < this.count; i++) {
      const sha256 = this.listedSha256(i);
      if (sha256 === undefined) continue;
      const blocks = this.#blocks.get(i);
      entries.push({ path: this.#names[i]!, size: this.uncompressedSize(i), sha256, ...(blocks ? { deflateBlocks: blocks } : {}) });
    }
    return entries;
  }

  #grow(capacity: number): void {
    const grow = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(from: T, perEntry = 1): T => {
      const to = new (from.constructor as new (length: number) => T)(capacity * perEntry);
      to.set(from);
      return to;
    };
    this.#rawNameBounds = grow(this.#rawNameBounds, 2);
    this.#numbers = grow(this.#numbers, 3);
    this.#crc32s = grow(this.#crc32s);
    this.#bitFlags = grow(this.#bitFlags);
    this.#methods = grow(this.#methods);
    this.#traits = grow(this.#traits);
    this.#digests = grow(this.#digests, SHA256_BYTES);
  }
}

/**
 * The manifest as a reader reports it: its fields, and its entries made on demand from the packed records (a new
 * array each call). Why not the parsed manifest: 50 000 entries as objects outlived the read by seconds.
 */
export interface ListedManifest extends ManifestHeader {
  entries(): ManifestEntry[];
}

export function listedManifest(header: ManifestHeader, files: ArchiveEntries): ListedManifest {
  return { ...header, entries: () => files.listedEntries() };
}
