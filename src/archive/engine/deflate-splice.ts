/**
 * Turns a one-block raw deflate stream into a piece that another deflate stream can follow, the way zlib's
 * sync flush ends a piece: the block's "final" bit cleared, then an empty stored block to reach a byte boundary.
 *
 * Why: libdeflate compresses our data faster than zlib level 2 at about the same size (PERF-NOTES), but it only
 * writes whole streams, whose last block is marked final, and it does not say in which bit that block ends.
 * For a stream of one block both are found cheaply: the final bit is the stream's first bit, and the end is
 * where the block's end-of-block code sits, followed only by the zero bits that pad the last byte. The code
 * is read from the block's header. When the end cannot be told for sure (a block of fixed codes, whose
 * end-of-block code is all zeros, or two places that both fit), `spliceInPlace` says no and the caller deflates
 * that piece another way.
 */

/** The order in which a dynamic block lists the lengths of its code-length code (RFC 1951, 3.2.7). */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const END_OF_BLOCK = 256;
/** An empty stored block's length and its complement, after the 3 header bits and the pad to a byte. */
const EMPTY_STORED_LENGTHS = [0x00, 0x00, 0xff, 0xff];
/** The same with its 3 header bits and the pad in a byte of their own. */
const STORED_HEADER_AND_LENGTHS = [0x00, ...EMPTY_STORED_LENGTHS];

/**
 * Splices `stream` (one whole raw deflate stream) in place: clears its final bit and returns the bytes to append
 * after it (an empty stored block). Returns `undefined`, leaving `stream` as it was, when it holds more than one
 * block or its end cannot be found for sure.
 */
export function spliceInPlace(stream: Uint8Array): readonly number[] | undefined {
  if (stream.length === 0 || (stream[0]! & 1) === 0) return undefined; // the first block is not the last
  const end = blockEnd(stream);
  if (end === undefined) return undefined;
  stream[0] = stream[0]! & 0xfe;
  // The stored block's header (3 zero bits) fits in the padding, or takes a byte of its own.
  return stream.length * 8 - end >= 3 ? EMPTY_STORED_LENGTHS : STORED_HEADER_AND_LENGTHS;
}

/** The bit just past the end of the single block that starts `stream`, if it can be told for sure. */
function blockEnd(stream: Uint8Array): number | undefined {
  const bits = new BitReader(stream);
  bits.read(1);
  const type = bits.read(2);
  if (type === 0) return stream.length * 8; // stored: its data ends on a byte boundary
  if (type !== 2) return undefined; // fixed codes: the end-of-block code is 7 zero bits, like the padding
  const endCode = endOfBlockCode(bits);
  if (endCode === undefined) return undefined;
  // The end is in the last byte: the end-of-block code just before it, only zeros after it.
  const total = stream.length * 8;
  let found: number | undefined;
  for (let end = total; end > total - 8 && end - endCode.length >= bits.position; end--) {
    if (!zerosFrom(stream, end, total) || !codeEndsAt(stream, endCode, end)) continue;
    if (found !== undefined) return undefined; // two places fit: not sure which
    found = end;
  }
  return found;
}

interface Code {
  /** The code's bits, most significant first, as deflate writes Huffman codes. */
  value: number;
  length: number;
}

/** Reads a dynamic block's header up to its literal/length code lengths and returns the end-of-block code. */
function endOfBlockCode(bits: BitReader): Code | undefined {
  const literalCount = bits.read(5) + 257;
  bits.read(5); // distance code count: not needed
  const codeLengthCount = bits.read(4) + 4;
  const codeLengthLengths = new Uint8Array(19);
  for (let i = 0; i < codeLengthCount; i++) codeLengthLengths[CODE_LENGTH_ORDER[i]!] = bits.read(3);
  const table = decodeTable(codeLengthLengths);
  // Room for the longest repeat running past the literal/length codes into the distance ones.
  const lengths = new Uint8Array(literalCount + 138);
  let count = 0;
  while (count < literalCount) {
    const entry = table[bits.peek7()]!;
    if (entry === 0) return undefined; // not a code of this code
    bits.read(entry >> 8);
    const symbol = entry & 0xff;
    if (symbol < 16) lengths[count++] = symbol;
    else if (symbol === 16) {
      if (count === 0) return undefined;
      const previous = lengths[count - 1]!;
      for (let n = 3 + bits.read(2); n > 0; n--) lengths[count++] = previous;
    } else {
      count += symbol === 17 ? 3 + bits.read(3) : 11 + bits.read(7); // zeros, as the array already holds
    }
  }
  if (bits.overrun) return undefined;
  const length = lengths[END_OF_BLOCK]!;
  if (length === 0) return undefined;
  return { value: canonicalCodes(lengths.subarray(0, literalCount))[END_OF_BLOCK]!, length };
}

/** Every symbol's canonical Huffman code under the given code lengths (RFC 1951, 3.2.2). Index loops: fast. */
function canonicalCodes(lengths: Uint8Array): Uint16Array {
  const counts = new Uint16Array(16);
  for (let s = 0; s < lengths.length; s++) counts[lengths[s]!]!++;
  counts[0] = 0;
  const next = new Uint16Array(16);
  let code = 0;
  for (let length = 1; length < 16; length++) {
    code = (code + counts[length - 1]!) << 1;
    next[length] = code;
  }
  const codes = new Uint16Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) if (lengths[s]) codes[s] = next[lengths[s]!]!++;
  return codes;
}

/**
 * A table from the next 7 bits of the stream to (code length << 8 | symbol) for a code of at most 7 bits (the
 * code-length code); 0 where no code matches.
 */
function decodeTable(lengths: Uint8Array): Uint16Array {
  const table = new Uint16Array(128);
  const codes = canonicalCodes(lengths);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const length = lengths[symbol]!;
    if (length === 0) continue;
    // Huffman codes go into the stream most significant bit first; the stream is read least significant first.
    let reversed = 0;
    for (let k = 0; k < length; k++) reversed |= ((codes[symbol]! >> k) & 1) << (length - 1 - k);
    for (let rest = 0; rest < 1 << (7 - length); rest++) table[reversed | (rest << length)] = (length << 8) | symbol;
  }
  return table;
}

function zerosFrom(stream: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bitAt(stream, i)) return false;
  return true;
}

function codeEndsAt(stream: Uint8Array, code: Code, end: number): boolean {
  const start = end - code.length;
  for (let k = 0; k < code.length; k++) {
    if (bitAt(stream, start + k) !== ((code.value >> (code.length - 1 - k)) & 1)) return false;
  }
  return true;
}

function bitAt(stream: Uint8Array, i: number): number {
  return (stream[i >> 3]! >> (i & 7)) & 1;
}

/** Reads deflate's bit order: bytes in order, each from its least significant bit. Past the end reads zeros. */
class BitReader {
  /** Bits read so far. */
  position = 0;
  readonly #stream: Uint8Array;
  #next = 0;
  #held = 0;
  #heldCount = 0;

  constructor(stream: Uint8Array) {
    this.#stream = stream;
  }

  get overrun(): boolean {
    return this.position > this.#stream.length * 8;
  }

  /** The next 7 bits, not consumed. */
  peek7(): number {
    this.#fill(7);
    return this.#held & 0x7f;
  }

  /** The next `count` bits (at most 24) as a number, the first read in the lowest bit. */
  read(count: number): number {
    this.#fill(count);
    const value = this.#held & ((1 << count) - 1);
    this.#held >>>= count;
    this.#heldCount -= count;
    this.position += count;
    return value;
  }

  #fill(count: number): void {
    while (this.#heldCount < count) {
      this.#held |= (this.#stream[this.#next++] ?? 0) << this.#heldCount;
      this.#heldCount += 8;
    }
  }
}
