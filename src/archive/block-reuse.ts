import * as v from "valibot";
import { reuseKey } from "./deflate-block.ts";
import type { ArchiveSourceReader } from "./read-archive.ts";
import { crc32 } from "./runtime.ts";
import type { WrittenBlock } from "./zip-stream-writer.ts";

/**
 * Reusing an earlier archive's deflated pieces.
 *
 * Why: deflate is most of a backup's CPU (about 2.7 of 4.5–4.8 core-seconds on the bench's data), and between
 * two backups most of a database does not change. Every block is deflated in pieces of about 48 KiB that each
 * stand alone (`deflate-block.ts`), so a piece's output depends only on its input bytes, whether it ends its
 * entry, and the level: a piece whose input has the same SHA-256 as one in the earlier archive can take that
 * archive's bytes as they are. The archive comes out byte for byte as if deflated again. Pieces, not 1 MiB
 * blocks, because an app's writes land all over its database (every index it has): one changed 4 KiB page
 * costs the one or two pieces it lies in.
 *
 * Trust: the index is written by the create job beside the archive it describes, never read from an archive
 * (an uploaded zip could claim anything). Before any piece is reused, the archive must still have the size and
 * SHA-256 the index was made for, and each piece read back must have its recorded length and CRC-32; a block
 * with a piece that does not is deflated whole. The new archive's CRC-32s and SHA-256s are computed from the
 * data itself either way.
 */

export const BLOCK_INDEX_FORMAT = 1;

const Sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const CountSchema = v.pipe(v.number(), v.integer(), v.minValue(0));

/** One deflated piece: its input's SHA-256, whether it ended its entry, where it sits, its length and CRC-32. */
const IndexedPieceSchema = v.tuple([Sha256Schema, v.boolean(), CountSchema, CountSchema, CountSchema]);

export const BlockIndexSchema = v.object({
  format: v.literal(BLOCK_INDEX_FORMAT),
  key: v.pipe(v.string(), v.minLength(1)),
  archiveSize: CountSchema,
  archiveSha256: Sha256Schema,
  level: CountSchema,
  pieces: v.array(IndexedPieceSchema),
});

export type BlockIndex = v.InferOutput<typeof BlockIndexSchema>;

/** Collects an archive's pieces as they are written, and how much of its input was deflated or reused. */
export class BlockIndexBuilder {
  #pieces: BlockIndex["pieces"] = [];
  readonly #indexing: boolean;
  readonly #maxPieces: number;
  readonly #onFull: () => void;
  #complete = true;
  readonly counts: ReuseCounts = { deflatedBytes: 0, reusedBytes: 0 };

  /**
   * `indexing`: list the pieces too, not only count them. Past `maxPieces` the list is dropped (a next backup
   * would not use it, and it would grow with the archive) and `onFull` is told, to stop fingerprinting.
   */
  constructor(indexing: boolean, options: { maxPieces?: number; onFull?: () => void } = {}) {
    this.#indexing = indexing;
    this.#maxPieces = options.maxPieces ?? MAX_REUSABLE_PIECES;
    this.#onFull = options.onFull ?? (() => {});
  }

  /** For `ZipStreamWriter`'s `onBlockWritten`. */
  readonly add = (block: WrittenBlock): void => {
    if (!block.pieces) {
      // A block from a deflater that does not fingerprint cannot be found again: no index then.
      this.#complete = false;
      this.counts.deflatedBytes += block.inputLength;
      return;
    }
    if (this.#indexing && this.#complete && this.#pieces.length + block.pieces.length > this.#maxPieces) {
      this.#complete = false;
      this.#pieces = [];
      this.#onFull();
    }
    let offset = block.offset;
    for (const [i, piece] of block.pieces.entries()) {
      if (piece.reused) this.counts.reusedBytes += piece.inputLength;
      else this.counts.deflatedBytes += piece.inputLength;
      if (this.#indexing && this.#complete) {
        const crc = piece.crc32 ?? crc32(block.data.subarray(offset - block.offset, offset - block.offset + piece.length));
        this.#pieces.push([piece.sha256, block.last && i === block.pieces.length - 1, offset, piece.length, crc]);
      }
      offset += piece.length;
    }
  };

  /** The pieces, once the archive is written; undefined when some block had none, or there were too many. */
  pieces(): BlockIndex["pieces"] | undefined {
    return this.#indexing && this.#complete ? this.#pieces : undefined;
  }
}

/** Parses an index's JSON; undefined for anything that is not a well-formed index. */
export function parseBlockIndex(text: string): BlockIndex | undefined {
  try {
    const parsed = v.safeParse(BlockIndexSchema, JSON.parse(text));
    return parsed.success ? parsed.output : undefined;
  } catch {
    return undefined;
  }
}

/** How much of an archive's deflated input was deflated now, and how much taken from an earlier archive. */
export interface ReuseCounts {
  deflatedBytes: number;
  reusedBytes: number;
}

/**
 * Indexes are kept up to this many pieces, about 12 GB of deflated input: each deflate thread holds a lookup of
 * about 100 bytes per piece, and the index is built in memory. Larger backups deflate everything, as without.
 */
export const MAX_REUSABLE_PIECES = 256 * 1024;

/** An earlier archive's pieces, found by their input's SHA-256 and read back checked. */
export class ReusablePieces {
  readonly #source: ArchiveSourceReader;
  readonly #index: BlockIndex;

  /** `source` must be the archive `index` describes, already held against its size and SHA-256. */
  constructor(index: BlockIndex, source: ArchiveSourceReader) {
    this.#index = index;
    this.#source = source;
  }

  /** Every piece's lookup key (`reuseKey`); a piece's number is its place in this list. */
  keys(): string[] {
    return this.#index.pieces.map(([sha256, last]) => reuseKey(sha256, last));
  }

  /**
   * The pieces numbered `numbers`, in that order, as the earlier archive holds them; undefined when one of them
   * is not there intact. Pieces that follow each other in the archive are read at once.
   */
  async read(numbers: number[]): Promise<{ data: Uint8Array; crc32: number }[] | undefined> {
    const pieces: { data: Uint8Array; crc32: number }[] = [];
    for (let i = 0; i < numbers.length; ) {
      const first = this.#index.pieces[numbers[i]!];
      if (!first) return undefined;
      let end = i + 1;
      let length = first[3];
      for (let next = this.#index.pieces[numbers[end]!]; next && next[2] === first[2] + length; next = this.#index.pieces[numbers[end]!]) {
        length += next[3];
        end++;
      }
      const run = await this.#source.read(first[2], length).catch(() => undefined);
      if (!run || run.length !== length) return undefined;
      let at = 0;
      for (const number of numbers.slice(i, end)) {
        const [, , , pieceLength, crc] = this.#index.pieces[number]!;
        const piece = run.subarray(at, (at += pieceLength));
        if (crc32(piece) !== crc) return undefined;
        pieces.push({ data: piece, crc32: crc });
      }
      i = end;
    }
    return pieces;
  }
}
