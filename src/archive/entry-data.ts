/**
 * An entry's bytes as a restore or a verify reads them: straight from the source in big pieces, inflated block by
 * block in parallel where the manifest lists the blocks, and checked on the way (its local header against its
 * central record, never more data than declared, exactly that much, a matching CRC-32). An encrypted entry is
 * decrypted in order as it is read, and checked against its authentication code.
 */
import { once } from "node:events";
import * as zlib from "node:zlib";
import { EncryptedBackupError, InvalidBackupError } from "../errors.ts";
import { NO_KEY_PROBLEM } from "./archive-checks.ts";
import type { ArchiveEntry } from "./archive-entries.ts";
import { checkedDataRange, type EntryDataRange, type EntryRanges } from "./local-headers.ts";
import { blockPlan, inflateBlocks, openEntryCiphers, readingAhead, type BlockInflater, type ReadInto, type ReadRange } from "./engine/index.ts";
import { AES_AUTH_CODE_BYTES, AES_SALT_BYTES, AES_VERIFIER_BYTES, AesEntryDecryptor, crc32, type ArchiveSourceReader, type DeflateBlocks, type OpenEntryCipher } from "./zip/index.ts";

/** Bytes read from the source at a time: big reads keep a remote or local source efficient. */
const READ_SIZE = 4 * 1024 * 1024;

/** The key an encrypted entry is read with, and where its cipher runs. */
export interface EntryKey {
  password: string;
  ciphers?: OpenEntryCipher;
}

/**
 * The key to read an archive's encrypted entries with (none without a password), their ciphers on a thread of
 * their own (`openEntryCiphers`); `close` ends it.
 */
export function openEntryKey(password: string | undefined): { key?: EntryKey; close(): void } {
  if (!password) return { close() {} };
  const ciphers = openEntryCiphers();
  return { key: { password, ciphers: ciphers.open }, close: ciphers.close };
}

/** Where an archive's entries lie, as `inspectArchive` found it: what each entry's local header is checked against. */
export interface ArchiveLayout {
  /** Where the central directory starts. */
  directoryOffset: number;
  ranges: EntryRanges;
}

/**
 * An entry's data as checked bytes, for extraction and for verification: its local header checked against its
 * central record and its bytes against the other entries', as zip.js's strict mode checks them
 * (`local-headers.ts`), then the data itself, never more than the header declares, and at the end
 * exactly that much with a matching CRC-32 (the runtime's native one). Throws `InvalidBackupError` naming the
 * entry for those; errors of the source or of inflating pass through as they are. `blocks`, from the manifest,
 * lets the entry inflate block by block in parallel when it fits the entry, on `inflater` (node:zlib's pool by
 * default). Each chunk is lent: the caller must be done with it (hashed, written) before it asks for the next.
 * An encrypted entry (WinZip AES-256, AE-2, as `archive-checks.ts` admits them) is read with `key`'s password,
 * decrypted where `key.ciphers` runs them (this thread if not given): its authentication code stands for the
 * CRC-32, which AE-2 leaves out.
 */
export async function* checkedEntryData(
  source: ArchiveSourceReader,
  entry: ArchiveEntry,
  layout: ArchiveLayout,
  blocks?: DeflateBlocks,
  inflater?: BlockInflater,
  key?: EntryKey,
): AsyncGenerator<Uint8Array> {
  const encrypted = entry.encrypted;
  const password = key?.password;
  const range = await checkedDataRange(source, entry, layout.directoryOffset, layout.ranges);
  const declared = entry.uncompressedSize;
  let seen = 0;
  let crc = 0;
  // `inspectArchive` refuses an encrypted archive without a key before any entry is read: this is a safeguard.
  if (encrypted && password === undefined) throw new EncryptedBackupError(NO_KEY_PROBLEM);
  const data = encrypted ? decryptedEntryData(source, entry, range, key!, blocks, inflater) : entryData(source, entry, range, blocks, inflater);
  for await (const chunk of data) {
    seen += chunk.length;
    if (seen > declared) throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: it holds more data than its header declares.`);
    if (!encrypted) crc = crc32(chunk, crc);
    yield chunk;
  }
  if (seen !== declared) throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: it is shorter than its header declares.`);
  if (!encrypted && (crc >>> 0) !== entry.crc32) {
    throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: its CRC-32 does not match.`);
  }
}

/**
 * An entry's data, inflated if need be, read straight from the source in big pieces. zip.js still parses the
 * central directory; its own data path (stream plumbing, CRC-32 in JavaScript) was most of
 * a restore's time. The CRC-32 is checked by the caller with the runtime's native one.
 */
async function* entryData(source: ArchiveSourceReader, entry: ArchiveEntry, { start, end }: EntryDataRange, blocks?: DeflateBlocks, inflater?: BlockInflater): AsyncGenerator<Uint8Array> {
  yield* inflatedData((offset, length, into) => source.read(start + offset, length, into), end - start, entry, blocks, inflater);
}

/**
 * An encrypted entry's plaintext, read as a plain one is (big reads, the manifest's blocks inflating in parallel):
 * the ciphertext is decrypted in order as it is read (`AesEntryDecryptor`, on `key.ciphers`), and once
 * all of it is read its authentication code must match, which stands for the CRC-32 that AE-2 leaves out. The
 * readers ask for the compressed bytes in order, each range once the one before it is read (`readingAhead`),
 * which is what a stream cipher with a running HMAC needs.
 */
async function* decryptedEntryData(
  source: ArchiveSourceReader,
  entry: ArchiveEntry,
  { start, end }: EntryDataRange,
  key: EntryKey,
  blocks?: DeflateBlocks,
  inflater?: BlockInflater,
): AsyncGenerator<Uint8Array> {
  const corrupt = (why: string) => new InvalidBackupError(`The entry ${entry.filename} is corrupt: ${why}.`);
  if (end - start < AES_SALT_BYTES + AES_VERIFIER_BYTES + AES_AUTH_CODE_BYTES) throw corrupt("it is too short to be encrypted");
  const decryptor = await AesEntryDecryptor.create(key.password, await source.read(start, AES_SALT_BYTES + AES_VERIFIER_BYTES), key.ciphers);
  if (!decryptor) throw corrupt("its password verifier does not match the archive's key");
  const cipherStart = start + AES_SALT_BYTES + AES_VERIFIER_BYTES;
  const cipherEnd = end - AES_AUTH_CODE_BYTES;
  let position = 0;
  const read = async (offset: number, length: number) => {
    if (offset !== position) throw new Error(`encrypted data is read in order: asked for ${offset}, at ${position}`);
    const read = await source.read(cipherStart + offset, length);
    // Decrypted in place, so into a copy unless the source's reads are the caller's own.
    const bytes = source.freshReads ? read : read.slice();
    position += bytes.length;
    await decryptor.update(bytes);
    return bytes;
  };
  yield* inflatedData(read, cipherEnd - cipherStart, entry, blocks, inflater);
  if (position !== cipherEnd - cipherStart) throw corrupt("its data was not read to its end");
  if (!(await decryptor.final(await source.read(cipherEnd, AES_AUTH_CODE_BYTES)))) throw corrupt("its authentication code does not match");
}

/** Reads of `READ_SIZE` bytes through `size` bytes, the last one shorter. */
function* fixedReads(size: number): Generator<ReadRange> {
  for (let offset = 0; offset < size; offset += READ_SIZE) yield { offset, length: Math.min(READ_SIZE, size - offset) };
}

/** `size` bytes of an entry's (plain) compressed data through `read`, stored or inflated, the next read ahead. */
async function* inflatedData(
  read: ReadInto,
  size: number,
  entry: ArchiveEntry,
  blocks?: DeflateBlocks,
  inflater?: BlockInflater,
): AsyncGenerator<Uint8Array> {
  async function* raw() {
    for await (const { bytes, length } of readingAhead(read, fixedReads(size))) {
      if (bytes.length !== length) throw new InvalidBackupError(`The entry ${entry.filename} cannot be read: the archive is truncated.`);
      yield bytes;
    }
  }
  if (entry.compressionMethod === 0) {
    yield* raw();
    return;
  }
  // Blocks inflate in one call each on other threads (`inflater`, or node:zlib's pool), several at once, beside
  // this thread's hashing and writing.
  const plan = blockPlan(blocks, entry.uncompressedSize, size);
  if (plan) {
    yield* inflateBlocks(read, plan, entry.uncompressedSize, entry.filename, inflater);
    return;
  }
  const stream = zlib.createInflateRaw({ chunkSize: 1024 * 1024 });
  const feeding = (async () => {
    for await (const chunk of raw()) {
      if (!stream.write(chunk)) await once(stream, "drain");
    }
    stream.end();
  })();
  feeding.catch((error) => stream.destroy(error));
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
    await feeding;
  } finally {
    stream.destroy();
  }
}
