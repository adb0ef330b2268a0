/**
 * The manifest's entries as an archive is written (`ManifestEntries`): held compactly until the archive ends, then
 * streamed out as the manifest's JSON, byte for byte what `JSON.stringify(manifest, null, 1)` makes.
 */
import { Buffer } from "node:buffer";
import type { Manifest, ManifestEntry } from "./manifest.ts";

type DeflateBlocks = NonNullable<ManifestEntry["deflateBlocks"]>;

/** The manifest's fields other than its entries. */
export type ManifestHeader = Omit<Manifest, "entries">;

const SHA256_BYTES = 32;
/** Bytes of JSON handed on at a time: about 1 500 entries. */
const CHUNK_BYTES = 256 * 1024;

const encoder = new TextEncoder();
/** What JSON would escape in a path: a quote, a backslash, a control character, a (lone) surrogate. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** An entry's fixed text, at the depth the manifest's entries sit (`JSON.stringify(manifest, null, 1)`). */
const LEAD_FIRST = encoder.encode("\n  ");
const LEAD_NEXT = encoder.encode(",\n  ");
const PATH_FIELD = encoder.encode('{\n   "path": "');
const SIZE_FIELD = encoder.encode('",\n   "size": ');
const SHA256_FIELD = encoder.encode(',\n   "sha256": "');
const ENTRY_END = encoder.encode('"\n  }');
/** Room for an entry's bytes beside its path: 56 of fixed text, up to 16 digits of size, 64 of digest in hex. */
const ENTRY_BYTES = 160;
const HEX_DIGITS = encoder.encode("0123456789abcdef");

/**
 * JSON text written into chunks of bytes, handed on as they fill. A `Buffer`, for its `write` at an offset: an
 * `encodeInto` needs a view of the chunk per call, about 100 bytes of garbage a time, 10 MB for 50 000 paths.
 */
class JsonBytes {
  #chunk = Buffer.alloc(CHUNK_BYTES);
  #filled = 0;

  /** Bytes left in the chunk being filled. */
  get room(): number {
    return this.#chunk.length - this.#filled;
  }

  /**
   * The bytes written since the last take, lent: the next are written over them, into a chunk of at least `size`
   * bytes.
   */
  take(size: number): Uint8Array {
    // A plain view, not the Buffer itself: a Buffer's `slice` would not copy, as a caller keeping a chunk expects.
    const written = new Uint8Array(this.#chunk.buffer, this.#chunk.byteOffset, this.#filled);
    this.#filled = 0;
    if (size > this.#chunk.length) this.#chunk = Buffer.alloc(size);
    return written;
  }

  ascii(bytes: Uint8Array): void {
    this.#chunk.set(bytes, this.#filled);
    this.#filled += bytes.length;
  }

  /** `text` as UTF-8, as it is: the caller has room for it (3 bytes per UTF-16 unit at most). */
  text(text: string): void {
    if (this.room < text.length * 3) this.#grow(text.length * 3);
    this.#filled += this.#chunk.write(text, this.#filled, "utf8");
  }

  /** A non-negative integer as JSON writes it. */
  digits(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) return this.text(JSON.stringify(value));
    let end = this.#filled;
    for (let rest = value; ; rest = Math.floor(rest / 10)) {
      end++;
      if (rest < 10) break;
    }
    this.#filled = end;
    for (let rest = value; ; rest = Math.floor(rest / 10)) {
      this.#chunk[--end] = 0x30 + (rest % 10);
      if (rest < 10) break;
    }
  }

  /** `length` bytes of `bytes` from `at`, in lowercase hex. */
  hex(bytes: Uint8Array, at: number, length: number): void {
    for (let k = at; k < at + length; k++) {
      this.#chunk[this.#filled++] = HEX_DIGITS[bytes[k]! >> 4]!;
      this.#chunk[this.#filled++] = HEX_DIGITS[bytes[k]! & 15]!;
    }
  }

  /** Room for `bytes` more in the chunk being filled (only the header's text can need it). */
  #grow(bytes: number): void {
    const grown = Buffer.alloc(this.#filled + bytes);
    this.#chunk.copy(grown, 0, 0, this.#filled);
    this.#chunk = grown;
  }
}

/**
 * Every entry's path, size, SHA-256 and deflate blocks, in archive order.
 *
 * Why not an array of `ManifestEntry`: an object and a 64-character hex string per entry, and the manifest's
 * JSON text and its bytes made whole at the end, were about 10 MB of the job thread's heap for a backup of 50 000
 * small uploads, and the text and bytes about 17 MB more at its very end, where the memory peaked. Here an entry
 * is its path (the string the source already holds), 8 bytes of size and 32 of digest; the few with deflate
 * blocks (large files) keep them in a map.
 */
export class ManifestEntries {
  readonly #paths: string[] = [];
  #sizes = new Float64Array(1024);
  #digests = new Uint8Array(1024 * SHA256_BYTES);
  readonly #blocks = new Map<number, DeflateBlocks>();

  get count(): number {
    return this.#paths.length;
  }

  /** Adds an entry, its digest to come (`setSha256`); returns its number. */
  add(path: string, size: number): number {
    const i = this.#paths.length;
    if (i === this.#sizes.length) {
      const sizes = new Float64Array(i * 2);
      sizes.set(this.#sizes);
      this.#sizes = sizes;
      const digests = new Uint8Array(i * 2 * SHA256_BYTES);
      digests.set(this.#digests);
      this.#digests = digests;
    }
    this.#paths.push(path);
    this.#sizes[i] = size;
    return i;
  }

  /** Entry `i`'s SHA-256, in hex. */
  setSha256(i: number, hex: string): void {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`Not a SHA-256: ${hex}`);
    this.#digests.set(Buffer.from(hex, "hex"), i * SHA256_BYTES);
  }

  /** Entry `i`'s deflate blocks, for an entry deflated in more than one. */
  setDeflateBlocks(i: number, blocks: DeflateBlocks): void {
    this.#blocks.set(i, blocks);
  }

  /** Entry `i` as the manifest lists it. */
  entry(i: number): ManifestEntry {
    const digest = this.#digests.subarray(i * SHA256_BYTES, (i + 1) * SHA256_BYTES);
    const entry: ManifestEntry = { path: this.#paths[i]!, size: this.#sizes[i]!, sha256: Buffer.from(digest.buffer, digest.byteOffset, SHA256_BYTES).toString("hex") };
    const blocks = this.#blocks.get(i);
    if (blocks) entry.deflateBlocks = blocks;
    return entry;
  }

  /** The whole manifest as objects (for callers and tests that look at it; the archive gets `json`). */
  manifest(header: ManifestHeader): Manifest {
    return { ...header, entries: Array.from({ length: this.count }, (_, i) => this.entry(i)) };
  }

  /**
   * The manifest's JSON as UTF-8, in chunks of about `CHUNK_BYTES`: the bytes of
   * `JSON.stringify(this.manifest(header), null, 1)`, without the whole text, or an object per entry, at once.
   * Each chunk is lent, as the zip writer takes its sources' chunks: the next one is written over it.
   * Why written byte by byte rather than by `JSON.stringify` of each entry: that made about 1 KB of garbage an
   * entry (and a string per field even without it, 10 MB each for 50 000 entries), and a backup of 50 000 small
   * uploads grew by about 40 MB in the 80 ms it took, at its very end, where its memory peaked.
   */
  *json(header: ManifestHeader): Generator<Uint8Array> {
    // The header's fields, in their order and escaping, from the runtime's own JSON: only the entries are ours.
    const empty = JSON.stringify({ ...header, entries: [] }, null, 1);
    if (this.count === 0) {
      yield encoder.encode(empty);
      return;
    }
    const at = empty.lastIndexOf("[]");
    const out = new JsonBytes();
    out.text(empty.slice(0, at + 1));
    for (let i = 0; i < this.count; i++) {
      const path = this.#paths[i]!;
      const blocks = this.#blocks.get(i);
      // An entry with blocks is rare (a large file): the runtime's JSON, one indent level deeper. So is a path
      // that JSON escapes.
      const text = blocks || NEEDS_ESCAPE.test(path) ? JSON.stringify(this.entry(i), null, 1).replaceAll("\n", "\n  ") : undefined;
      if (out.room < (text ?? path).length * 3 + ENTRY_BYTES) yield out.take(Math.max(CHUNK_BYTES, (text ?? path).length * 3 + ENTRY_BYTES));
      out.ascii(i === 0 ? LEAD_FIRST : LEAD_NEXT);
      if (text !== undefined) {
        out.text(text);
        continue;
      }
      out.ascii(PATH_FIELD);
      out.text(path);
      out.ascii(SIZE_FIELD);
      out.digits(this.#sizes[i]!);
      out.ascii(SHA256_FIELD);
      out.hex(this.#digests, i * SHA256_BYTES, SHA256_BYTES);
      out.ascii(ENTRY_END);
    }
    const end = `\n ${empty.slice(at + 1)}`;
    if (out.room < end.length * 3) yield out.take(end.length * 3);
    out.text(end);
    yield out.take(0);
  }
}
