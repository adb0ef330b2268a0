/**
 * What the zip writer asks of a deflater, declared on the format's side so that the format does not depend on
 * how or where blocks deflate: the engine supplies one (`ParallelDeflater`, `engine/parallel-deflate-stream.ts`),
 * and the face (`write-archive.ts`) hands it to the writer.
 */

/**
 * Where an entry's deflate stream can be cut: our writer deflates each block of `blockSize` input bytes on its
 * own (no shared window) and ends it on a byte boundary, and the manifest lists each block's compressed size.
 */
export interface DeflateBlocks {
  blockSize: number;
  compressedSizes: number[];
}

/**
 * The least a deflated block brings the writer: its raw deflate data. A deflater may say more about it (its
 * pieces, for reuse, `engine/deflate-block.ts`); the writer hands that on as it is (`WrittenBlock`).
 */
export interface CompressedBlock {
  data: Uint8Array;
}

/**
 * Where a deflater sends each block: the compressed bytes to come, the input bytes the block holds meanwhile,
 * and whether it is the entry's last.
 */
export type BlockSink<Block extends CompressedBlock = CompressedBlock> = (compressed: Promise<Block>, inputBytes: number, last: boolean) => Promise<void>;

/**
 * One entry's deflater: takes the entry's bytes chunk by chunk and sends its blocks to the sink in order, every
 * block but the last of `blockSize` input bytes, so the blocks concatenate into one raw deflate stream.
 */
export interface EntryDeflater {
  /** Uncompressed bytes in every block but the last. */
  readonly blockSize: number;
  /** Takes `chunk` (the caller may reuse it once this resolves); full blocks go to the sink. */
  write(chunk: Uint8Array): Promise<void>;
  /** Sends what is left as the final block. */
  end(): Promise<void>;
}

/** Starts a deflater for one entry, at `level`, that sends its blocks to `sink`. */
export type OpenEntryDeflater<Block extends CompressedBlock = CompressedBlock> = (sink: BlockSink<Block>, level: number) => EntryDeflater;
