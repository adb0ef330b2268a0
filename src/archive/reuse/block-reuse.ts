/**
 * Reusing an earlier archive's deflated pieces.
 *
 * Why: deflate is most of a backup's CPU (about 2.7 of 4.5–4.8 core-seconds on the bench's data), and between
 * two backups most of a database does not change. Every block is deflated in pieces of about 48 KiB that each
 * stand alone (`deflate-block.ts`), so a piece's output depends only on its input bytes, whether it ends its
 * entry, and the level: a piece whose input has the same fingerprint (a keyed hash, `piece-fingerprint.ts`) as
 * one in the earlier archive can take that archive's bytes as they are. The archive comes out byte for byte as
 * if deflated again. Pieces, not 1 MiB blocks, because an app's writes land all over its database (every index
 * it has): one changed 4 KiB page costs the one or two pieces it lies in.
 *
 * Trust: the index is written by the create job beside the archive it describes, never read from an archive
 * (an uploaded zip could claim anything). Before any piece is reused, the archive must still have the size and
 * SHA-256 the index was made for, and each piece read back must have its recorded length and CRC-32; a block
 * with a piece that does not is deflated whole. The new archive's CRC-32s and SHA-256s are computed from the
 * data itself either way.
 */
import { Buffer } from "node:buffer";
import * as v from "valibot";
import { FINGERPRINT_BYTES, type DeflatedBlock, type ReusablePieceSource } from "../engine/index.ts";
import { crc32, type ArchiveSourceReader, type WrittenBlock } from "../zip/index.ts";
import { PieceRecordList, recordAt, recordCount, sortedRecords } from "./piece-records.ts";

/** 3: 16-byte keyed fingerprints and their key (2 held SHA-256s; such an index is refused like any malformed one). */
const BLOCK_INDEX_FORMAT = 3;

const Sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const CountSchema = v.pipe(v.number(), v.integer(), v.minValue(0));
const Base64Schema = v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]*={0,2}$/));

/**
 * The index as stored: its archive, the key its pieces were fingerprinted with, and their records
 * (`piece-records.ts`), both in base64, with the records' count as a check.
 */
const StoredIndexSchema = v.object({
  format: v.literal(BLOCK_INDEX_FORMAT),
  key: v.pipe(v.string(), v.minLength(1)),
  archiveSize: CountSchema,
  archiveSha256: Sha256Schema,
  level: CountSchema,
  fingerprintKey: Base64Schema,
  count: CountSchema,
  pieces: Base64Schema,
});

/** An archive's deflated pieces, each by its input's fingerprint with its place, length and CRC-32. */
export interface BlockIndex {
  key: string;
  archiveSize: number;
  archiveSha256: string;
  level: number;
  /** The secret the fingerprints are made with: a next backup that reuses these pieces keeps it for its own. */
  fingerprintKey: Uint8Array;
  /** Packed records (`piece-records.ts`), in archive order. */
  records: Uint8Array;
}

/** The index as JSON, for the store. */
export function serializeBlockIndex(index: BlockIndex): string {
  const { records, fingerprintKey, ...rest } = index;
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  return JSON.stringify({ format: BLOCK_INDEX_FORMAT, ...rest, fingerprintKey: base64(fingerprintKey), count: recordCount(records), pieces: base64(records) });
}

/** Parses an index's JSON; undefined for anything that is not a well-formed index. */
export function parseBlockIndex(text: string): BlockIndex | undefined {
  try {
    const parsed = v.safeParse(StoredIndexSchema, JSON.parse(text));
    if (!parsed.success) return undefined;
    const { format: _, count, pieces, ...rest } = parsed.output;
    const records = new Uint8Array(Buffer.from(pieces, "base64"));
    const fingerprintKey = new Uint8Array(Buffer.from(rest.fingerprintKey, "base64"));
    if (recordCount(records) !== count || fingerprintKey.length !== FINGERPRINT_BYTES) return undefined;
    return { ...rest, fingerprintKey, records };
  } catch {
    return undefined;
  }
}

/** How much of an archive's deflated input was deflated now, and how much taken from an earlier archive. */
export interface ReuseCounts {
  deflatedBytes: number;
  reusedBytes: number;
  /**
   * Why the archive keeps no index for a next backup: `"encrypted"` (another archive's ciphertext, under other
   * salts, cannot be copied), `"too large"` (more pieces than `MAX_REUSABLE_PIECES`).
   */
  skipped?: "encrypted" | "too large";
}

/**
 * Indexes are kept up to this many pieces, about 12 GB of deflated input (8.7 MB of records, held by the job's
 * thread while a backup writes its own, and shared with the deflate threads while one is reused). Larger backups
 * deflate everything, as without an index.
 */
export const MAX_REUSABLE_PIECES = 256 * 1024;

/** Collects an archive's pieces as they are written, and how much of its input was deflated or reused. */
export class BlockIndexBuilder {
  #records: PieceRecordList | undefined;
  readonly #maxPieces: number;
  readonly #onFull: () => void;
  readonly counts: ReuseCounts = { deflatedBytes: 0, reusedBytes: 0 };

  /**
   * `indexing`: list the pieces too, not only count them. Past `maxPieces` the list is dropped (a next backup
   * would not use it, and it would grow with the archive) and `onFull` is told, to stop fingerprinting.
   */
  constructor(indexing: boolean, options: { maxPieces?: number; onFull?: () => void } = {}) {
    this.#records = indexing ? new PieceRecordList() : undefined;
    this.#maxPieces = options.maxPieces ?? MAX_REUSABLE_PIECES;
    this.#onFull = options.onFull ?? (() => {});
  }

  /** For `ZipStreamWriter`'s `onBlockWritten`. */
  readonly add = (block: WrittenBlock<DeflatedBlock>): void => {
    if (!block.pieces) {
      // A block from a deflater that does not fingerprint cannot be found again: no index then.
      this.#records = undefined;
      this.counts.deflatedBytes += block.inputLength;
      return;
    }
    if (this.#records && this.#records.count + block.pieces.length > this.#maxPieces) {
      this.#records = undefined;
      this.counts.skipped = "too large";
      this.#onFull();
    }
    let offset = block.offset;
    for (const [i, piece] of block.pieces.entries()) {
      if (piece.reused) this.counts.reusedBytes += piece.inputLength;
      else this.counts.deflatedBytes += piece.inputLength;
      this.#records?.push({
        fingerprint: piece.fingerprint,
        last: block.last && i === block.pieces.length - 1,
        offset,
        length: piece.length,
        crc32: piece.crc32 ?? crc32(block.data.subarray(offset - block.offset, offset - block.offset + piece.length)),
      });
      offset += piece.length;
    }
  };

  /** The records, once the archive is written; undefined when not indexing, some block had none, or too many. */
  records(): Uint8Array | undefined {
    return this.#records?.bytes();
  }
}

/** An earlier archive's pieces, found by their input's fingerprint and read back checked. */
export class ReusablePieces implements ReusablePieceSource {
  readonly #source: ArchiveSourceReader;
  readonly #sorted: Uint8Array;
  /** The key the pieces were fingerprinted with: new pieces must be fingerprinted with it to be found. */
  readonly fingerprintKey: Uint8Array;

  /** `source` must be the archive `index` describes, already held against its size and SHA-256. */
  constructor(index: BlockIndex, source: ArchiveSourceReader) {
    this.#source = source;
    this.#sorted = sortedRecords(index.records);
    this.fingerprintKey = index.fingerprintKey;
  }

  /**
   * The records sorted for lookups (`findRecord`), in shared memory for the deflate threads; a piece's number
   * is its place here.
   */
  get lookup(): Uint8Array {
    return this.#sorted;
  }

  /**
   * The pieces numbered `numbers`, in that order, as the earlier archive holds them; undefined when one of them
   * is not there intact. Pieces that follow each other in the archive are read at once.
   */
  async read(numbers: number[]): Promise<{ data: Uint8Array; crc32: number }[] | undefined> {
    const records = numbers.map((n) => (n < recordCount(this.#sorted) ? recordAt(this.#sorted, n) : undefined));
    const pieces: { data: Uint8Array; crc32: number }[] = [];
    for (let i = 0; i < records.length; ) {
      const first = records[i];
      if (!first) return undefined;
      let end = i + 1;
      let length = first.length;
      while (end < records.length && records[end]?.offset === first.offset + length) length += records[end++]!.length;
      const run = await this.#source.read(first.offset, length).catch(() => undefined);
      if (!run || run.length !== length) return undefined;
      let at = 0;
      for (const record of records.slice(i, end)) {
        const piece = run.subarray(at, (at += record!.length));
        if (crc32(piece) !== record!.crc32) return undefined;
        pieces.push({ data: piece, crc32: record!.crc32 });
      }
      i = end;
    }
    return pieces;
  }
}
