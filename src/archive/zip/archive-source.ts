/**
 * What every archive reader reads from: random access to the archive's bytes, wherever they live (a local
 * file, a range-reading S3 object, bytes in a test), and zip.js's view of it.
 */
import { Reader } from "@zip.js/zip.js";

/** Random access to an archive (a local file, a range-reading S3 object, bytes in a test). */
export interface ArchiveSourceReader {
  size: number;
  /**
   * `length` bytes at `offset` (fewer only at the end). `into`, when given, is memory of at least `length` bytes
   * that the caller leaves alone until the read settles: a source may read into it and return a view of it
   * (saving new memory for each large read, `engine/read-buffers.ts`), or ignore it.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * Each read returns memory of its own that nothing else holds, so the caller may change it (decrypt it in
   * place). A source that hands out views of a cache it keeps leaves this out.
   */
  freshReads?: boolean;
  /** A hint: these byte ranges will probably not be read, so a source that reads ahead should leave them out. */
  skip?(ranges: [start: number, end: number][]): void;
}

/** zip.js's view of a random-access source. */
export function toZipReader(source: ArchiveSourceReader): Reader<unknown> {
  const reader = new Reader<unknown>(undefined);
  reader.size = source.size;
  reader.readUint8Array = (index, length) => source.read(index, length);
  return reader;
}
