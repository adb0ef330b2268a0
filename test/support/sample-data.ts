/** Compressible but not trivial: rows of JSON-ish text with varying numbers, `bytes` long. */
export function jsonRows(bytes: number, seed = 0): Uint8Array {
  const parts: string[] = [];
  let length = 0;
  for (let i = seed; length < bytes; i++) {
    const line = `{"id":${i},"name":"row ${i % 977}","score":${(i * 7919) % 10007}}\n`;
    parts.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, bytes);
}
