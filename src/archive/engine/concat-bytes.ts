/**
 * Joining byte parts without a copy where they already lie side by side: a block's pieces, fresh from one output
 * buffer or read back in one run from an earlier archive.
 */

/**
 * The parts as one array: the part itself when there is one, a view when they lie one after another in one
 * buffer (pieces read back in one run), otherwise a copy.
 */
export function concatBytes(parts: readonly (Uint8Array | readonly number[])[]): Uint8Array {
  const first = parts[0];
  if (parts.length === 1 && first instanceof Uint8Array) return first;
  if (first instanceof Uint8Array) {
    let end = first.byteOffset;
    const adjacent = parts.every((part) => part instanceof Uint8Array && part.buffer === first.buffer && part.byteOffset === end && ((end += part.length), true));
    if (adjacent) return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
  }
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
