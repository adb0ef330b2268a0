import type { ByteRange } from "../store/backup-store.ts";

/**
 * Parses a single-range `Range: bytes=...` header against a resource of `size` bytes. Returns undefined
 * for no (or an unsupported multi-range) header, which means "send it all", as RFC 9110 allows.
 */
export function parseRange(header: string | null, size: number): ByteRange | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
    if (start > end) return start >= size ? "unsatisfiable" : undefined;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}
