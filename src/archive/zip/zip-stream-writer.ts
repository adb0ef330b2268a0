/**
 * The zip format as backups write it: `ZipStreamWriter` streams entries into a zip with data descriptors and
 * zip64 records, encrypted with WinZip AES-256 when given a password (`winzip-aes.ts`). It deflates through the
 * `OpenEntryDeflater` it is given (`block-deflater.ts`), and knows nothing of where the blocks deflate.
 */
import type { CompressedBlock, DeflateBlocks, EntryDeflater, OpenEntryDeflater } from "./block-deflater.ts";
import { crc32 } from "./crc32.ts";
import { batchedWrites, type BatchedWrites } from "./batched-writes.ts";
import { aesExtra, CentralDirectory, FLAGS, versionNeeded, type CentralRecord } from "./central-directory.ts";
import {
  DATA_DESCRIPTOR_SIGNATURE,
  END_OF_CENTRAL_SIGNATURE,
  FLAG_ENCRYPTED,
  LOCAL_HEADER_BYTES,
  LOCAL_HEADER_SIGNATURE,
  MAX32,
  METHOD_AES,
  ZIP64_END_OF_CENTRAL_SIGNATURE,
  ZIP64_LOCATOR_SIGNATURE,
} from "./format.ts";
import { OrderedOutput } from "./ordered-output.ts";
import { AES_OVERHEAD, AesEntryEncryptor, type OpenEntryCipher } from "./winzip-aes.ts";

/** Entries expected to reach this size get zip64 fields from their local header on. */
const ZIP64_THRESHOLD = 0xffff0000;

export interface ZipEntryOptions {
  /** 0 stores the entry; 1–9 deflates it at that level. */
  level: number;
  lastModified: Date;
  /** The expected uncompressed size, to decide on zip64 before the data is written. */
  sizeHint: number;
}

/**
 * Input bytes that may wait in pending blocks and chunks: 4 blocks of 1 MiB in flight keep both cores busy while
 * three threads (this one and two deflating) share them. With zlib on the thread pool each pending block cost
 * about 10× its size in zlib state, and 3 MiB was the choice; with libdeflate workers a block costs its copy,
 * and 4 MiB was 4–7% faster than 3 for about 5 MB more at peak (6 MiB: no faster than 4, 10 MB more; README
 * "Performance").
 */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** The central directory goes out in pieces of this size: views of its buffer, which nothing changes once written. */
const CENTRAL_PIECE_BYTES = 1024 * 1024;

/** What `addEntry` learned about an entry once all of it is read. */
export interface AddedEntry {
  /** Uncompressed size. */
  size: number;
  /** For a deflated entry, its blocks, known once the last one is deflated (`close` waits for them too). */
  blocks?: Promise<DeflateBlocks>;
}

/**
 * A deflated block as it reaches the output (as the deflater handed it back, and where it went), for a writer
 * that indexes its blocks (`block-reuse.ts`).
 */
export type WrittenBlock<Block extends CompressedBlock = CompressedBlock> = Block & {
  last: boolean;
  inputLength: number;
  /** Where the block starts in the archive. */
  offset: number;
};

export interface ZipStreamWriterOptions<Block extends CompressedBlock = CompressedBlock> {
  /**
   * Deflates each entry with a level above 0 (`ParallelDeflater` through `parallelDeflaters`, in
   * `engine/parallel-deflate-stream.ts`); a writer without one can only store entries.
   */
  deflater?: OpenEntryDeflater<Block>;
  /** Told about every deflated block once it is written, in archive order. */
  onBlockWritten?: (block: WrittenBlock<Block>) => void;
  /**
   * Encrypts every entry with WinZip AES-256 (AE-2, `winzip-aes.ts`): each with its own salt and keys, its
   * CRC-32 fields 0, and its data salt + verifier + ciphertext + authentication code. Blocks are encrypted in
   * place, so the deflater's must be the writer's to change (the engine's are: each arrives in a buffer of its
   * own from a worker, and nothing is reused into an encrypted archive) and `onBlockWritten` sees ciphertext.
   */
  password?: string;
  /** Where the entries' ciphers run (`engine/aes-worker.ts`): this thread when not given. */
  ciphers?: OpenEntryCipher;
}

/**
 * A minimal streaming zip writer: entries one after another, each with a data descriptor (so nothing is
 * buffered or seeked), zip64 records where sizes or offsets need them, then the central directory.
 *
 * Why not zip.js's ZipWriter: on the bench data it spent twice as long as the deflate itself in stream
 * plumbing and JavaScript CRC (PERF-NOTES; README "Performance"). Here each chunk is hashed with the
 * native CRC-32 and handed to the entry's deflater (`ParallelDeflater`) or queued as is. Output goes through one `OrderedOutput`
 * for the whole archive, so the next entries are read while earlier blocks still deflate.
 */
export class ZipStreamWriter<Block extends CompressedBlock = CompressedBlock> {
  readonly #output: OrderedOutput;
  readonly #writes: BatchedWrites;
  /** Each entry's record, encoded once its descriptor is written (`central-directory.ts`). */
  readonly #central = new CentralDirectory();
  readonly #deflater: OpenEntryDeflater<Block> | undefined;
  readonly #onBlockWritten: ((block: WrittenBlock<Block>) => void) | undefined;
  readonly #keys: EncryptorsAhead | undefined;

  /** `write` must apply backpressure (resolve when the bytes may be followed by more). */
  constructor(write: (data: Uint8Array) => Promise<void>, options: ZipStreamWriterOptions<Block> = {}) {
    // Small pieces (headers, descriptors, small entries, central records) gathered into larger writes.
    this.#writes = batchedWrites(write);
    this.#output = new OrderedOutput(this.#writes.write, MAX_PENDING_BYTES);
    this.#deflater = options.deflater;
    this.#onBlockWritten = options.onBlockWritten;
    this.#keys = options.password === undefined ? undefined : new EncryptorsAhead(options.password, options.ciphers);
  }

  /**
   * Reads one entry from `chunks` and queues it; resolves once all of it is read (its last blocks may still be
   * deflating: `close` waits for them). Each chunk is copied before the next is asked for, so the source may
   * reuse its memory.
   */
  async addEntry(path: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: ZipEntryOptions): Promise<AddedEntry> {
    const name = new TextEncoder().encode(path);
    const method = options.level > 0 ? 8 : 0;
    const openDeflater = this.#deflater;
    if (method === 8 && !openDeflater) throw new Error(`The entry ${path} is to be deflated, and the zip writer has no deflater.`);
    const { dosTime, dosDate } = toDos(options.lastModified);
    const zip64 = options.sizeHint >= ZIP64_THRESHOLD;
    const encryption = this.#keys && new EntryEncryption(this.#keys.take());
    const record: CentralRecord = { name, method, dosTime, dosDate, crc: 0, compressed: 0, uncompressed: 0, offset: 0, zip64, encrypted: Boolean(encryption) };
    await this.#output.push(localHeader(record), 0, (offset) => {
      record.offset = offset;
    });
    if (encryption) await this.#output.push(encryption.header, 0);
    /** A piece as it goes out: encrypted, in order, when the entry is. */
    const out = encryption ? (data: Promise<Uint8Array> | Uint8Array) => encryption.next(data) : (data: Promise<Uint8Array> | Uint8Array) => data;

    // Sizes only: keeping the blocks themselves until the entry ends would hold its whole compressed output.
    const blockSizes: Promise<number>[] = [];
    let storedBytes = 0;
    let crc = 0;
    let uncompressed = 0;
    let blockSize = 0;
    if (method === 8) {
      const onBlockWritten = this.#onBlockWritten;
      const deflater: EntryDeflater = openDeflater!((block, inputBytes, last) => {
        let deflated: Block | undefined;
        const data = block.then((b) => (deflated = b).data);
        const size = data.then((d) => d.length);
        size.catch(() => {}); // a failure surfaces through the output queue
        blockSizes.push(size);
        // The offset is known when the block's turn comes, by which time it has been deflated.
        return this.#output.push(out(data), inputBytes, onBlockWritten && ((offset) => onBlockWritten({ ...deflated!, last, offset, inputLength: inputBytes })));
      }, options.level);
      blockSize = deflater.blockSize;
      for await (const chunk of chunks) {
        if (!encryption) crc = crc32(chunk, crc);
        uncompressed += chunk.length;
        await deflater.write(chunk);
      }
      await deflater.end();
    } else {
      for await (const chunk of chunks) {
        if (!encryption) crc = crc32(chunk, crc);
        uncompressed += chunk.length;
        storedBytes += chunk.length;
        // A copy: the source may read its next chunk into this one's memory (`ArchiveSource`).
        await this.#output.push(out(new Uint8Array(chunk)), chunk.length);
      }
    }
    // AE-2: no CRC-32 (it would tell about the plaintext); the authentication code ends the data instead.
    if (encryption) await this.#output.push(encryption.end(), 0);
    const overhead = encryption ? AES_OVERHEAD : 0;
    // The descriptor needs the compressed size, known once the entry's last block is deflated.
    const compressedSizes = Promise.all(blockSizes);
    const descriptor = compressedSizes.then((sizes) => {
      const compressed = sizes.reduce((sum, size) => sum + size, storedBytes + overhead);
      if (!zip64 && (uncompressed >= MAX32 || compressed >= MAX32)) {
        throw new Error(`The entry ${path} grew past 4 GiB beyond its announced size.`);
      }
      Object.assign(record, { crc: crc >>> 0, compressed, uncompressed });
      return dataDescriptor(record);
    });
    // Written in archive order, once the sizes are in the record: the central directory takes it then.
    await this.#output.push(descriptor, 0, () => this.#central.add(record));
    if (method !== 8) return { size: uncompressed };
    const blocks = compressedSizes.then((sizes) => ({ blockSize, compressedSizes: sizes }));
    blocks.catch(() => {}); // a failure surfaces through the output queue
    return { size: uncompressed, blocks };
  }

  /** Writes the central directory and the end records. */
  async close(): Promise<void> {
    await this.#output.drain();
    const cdStart = this.#output.offset;
    // Every descriptor is written, so every record is in; in pieces of a batch's size, as the entries' were.
    const central = this.#central.bytes();
    for (let at = 0; at < central.length; at += CENTRAL_PIECE_BYTES) await this.#output.push(central.subarray(at, at + CENTRAL_PIECE_BYTES), 0);
    await this.#output.drain();
    const cdSize = this.#output.offset - cdStart;
    const count = this.#central.count;
    if (count >= 0xffff || cdStart >= MAX32 || cdSize >= MAX32) {
      const zip64End = this.#output.offset;
      const record = new Uint8Array(56 + 20);
      const r = new DataView(record.buffer);
      r.setUint32(0, ZIP64_END_OF_CENTRAL_SIGNATURE, true);
      r.setBigUint64(4, 44n, true);
      r.setUint16(12, (3 << 8) | 45, true);
      r.setUint16(14, 45, true);
      r.setBigUint64(24, BigInt(count), true);
      r.setBigUint64(32, BigInt(count), true);
      r.setBigUint64(40, BigInt(cdSize), true);
      r.setBigUint64(48, BigInt(cdStart), true);
      r.setUint32(56, ZIP64_LOCATOR_SIGNATURE, true);
      r.setBigUint64(64, BigInt(zip64End), true);
      r.setUint32(72, 1, true);
      await this.#output.push(record, 0);
    }
    const end = new Uint8Array(22);
    const e = new DataView(end.buffer);
    e.setUint32(0, END_OF_CENTRAL_SIGNATURE, true);
    e.setUint16(8, Math.min(count, 0xffff), true);
    e.setUint16(10, Math.min(count, 0xffff), true);
    e.setUint32(12, Math.min(cdSize, MAX32), true);
    e.setUint32(16, Math.min(cdStart, MAX32), true);
    await this.#output.push(end, 0);
    await this.#output.drain();
    await this.#writes.flush();
  }
}

/** The local header: CRC and sizes stay 0 (0xffffffff with zip64, whose extra field holds them), the data descriptor has them. */
function localHeader({ name, method, dosTime, dosDate, zip64, encrypted }: CentralRecord): Uint8Array {
  const aes = encrypted ? aesExtra(method) : new Uint8Array(0);
  const extra = new Uint8Array((zip64 ? 20 : 0) + aes.length);
  if (zip64) {
    const view = new DataView(extra.buffer);
    view.setUint16(0, 1, true);
    view.setUint16(2, 16, true);
  }
  extra.set(aes, zip64 ? 20 : 0);
  const header = new Uint8Array(LOCAL_HEADER_BYTES + name.length + extra.length);
  const h = new DataView(header.buffer);
  h.setUint32(0, LOCAL_HEADER_SIGNATURE, true);
  h.setUint16(4, versionNeeded(encrypted, zip64), true);
  h.setUint16(6, encrypted ? FLAGS | FLAG_ENCRYPTED : FLAGS, true);
  h.setUint16(8, encrypted ? METHOD_AES : method, true);
  h.setUint16(10, dosTime, true);
  h.setUint16(12, dosDate, true);
  if (zip64) {
    h.setUint32(18, MAX32, true);
    h.setUint32(22, MAX32, true);
  }
  h.setUint16(26, name.length, true);
  h.setUint16(28, extra.length, true);
  header.set(name, LOCAL_HEADER_BYTES);
  header.set(extra, LOCAL_HEADER_BYTES + name.length);
  return header;
}

/**
 * Each entry's keys, derived ahead of it on the thread pool: PBKDF2 costs about 0.5 ms an entry, which an archive
 * of many files would otherwise wait for once per entry, its output stopped at the entry's header.
 */
class EncryptorsAhead {
  static readonly AHEAD = 4;
  readonly #password: string;
  readonly #ciphers: OpenEntryCipher | undefined;
  readonly #coming: Promise<AesEntryEncryptor>[] = [];

  constructor(password: string, ciphers?: OpenEntryCipher) {
    this.#password = password;
    this.#ciphers = ciphers;
  }

  /** The next entry's encryptor; the ones after it start deriving. */
  take(): Promise<AesEntryEncryptor> {
    while (this.#coming.length <= EncryptorsAhead.AHEAD) {
      const encryptor = AesEntryEncryptor.create(this.#password, this.#ciphers);
      encryptor.catch(() => {}); // one never taken must not be an unhandled rejection; a taken one's is seen
      this.#coming.push(encryptor);
    }
    return this.#coming.shift()!;
  }
}

/**
 * One entry's encryption as its pieces reach the output: each piece goes to the cipher once its data is there and
 * every piece before it has gone, so the counter and the HMAC see the ciphertext in order, whatever order the
 * blocks deflate in. A piece does not wait for the one before it to come back: the cipher keeps them in order
 * (`EntryCipher`), and on another thread the round trips overlap.
 */
class EntryEncryption {
  readonly #encryptor: Promise<AesEntryEncryptor>;
  /** Settles once the last piece is handed to the cipher. */
  #handed: Promise<unknown>;
  readonly header: Promise<Uint8Array>;

  constructor(encryptor: Promise<AesEntryEncryptor>) {
    this.#encryptor = encryptor;
    this.#handed = this.#encryptor;
    this.header = this.#encryptor.then((e) => e.header());
  }

  /** The piece encrypted, in place: it must be this writer's to change. */
  next(data: Promise<Uint8Array> | Uint8Array): Promise<Uint8Array> {
    // Wrapped: the promise of the piece's encryption must not be waited for before the next piece is handed on.
    const handed = Promise.all([this.#encryptor, data, this.#handed]).then(([encryptor, piece]) => ({ piece, done: encryptor.update(piece) }));
    this.#handed = handed;
    return handed.then(async ({ piece, done }) => {
      await done;
      return piece;
    });
  }

  end(): Promise<Uint8Array> {
    return Promise.all([this.#encryptor, this.#handed]).then(([encryptor]) => encryptor.final());
  }
}

function dataDescriptor({ crc, compressed, uncompressed, zip64 }: CentralRecord): Uint8Array {
  const descriptor = new Uint8Array(zip64 ? 24 : 16);
  const d = new DataView(descriptor.buffer);
  d.setUint32(0, DATA_DESCRIPTOR_SIGNATURE, true);
  d.setUint32(4, crc, true);
  if (zip64) {
    d.setBigUint64(8, BigInt(compressed), true);
    d.setBigUint64(16, BigInt(uncompressed), true);
  } else {
    d.setUint32(8, compressed, true);
    d.setUint32(12, uncompressed, true);
  }
  return descriptor;
}

/** MS-DOS date and time fields, in local time as zip tools expect (2-second resolution, 1980 onwards). */
function toDos(date: Date): { dosTime: number; dosDate: number } {
  const d = Number.isNaN(date.getTime()) || date.getFullYear() < 1980 ? new Date(1980, 0, 1) : date;
  return {
    dosTime: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    dosDate: ((Math.min(d.getFullYear(), 2107) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}
