import { dlopen, type FFIFunction, type Library } from "bun:ffi";

/** Names the library goes by: Debian and Ubuntu (`libisal2`), a build from source, Homebrew's `isa-l`. */
const LIBRARY_NAMES = ["libisal.so.2", "libisal.so", "libisal.2.dylib", "libisal.dylib"];

/**
 * ISA-L (`libisal`) with the functions `symbols` declares, or undefined where it is not installed under any name,
 * or where pointers are not 64-bit: the struct layouts its callers write into are for 64-bit pointers.
 */
export function openIsalLibrary<Symbols extends Record<string, FFIFunction>>(symbols: Symbols): Library<Symbols> | undefined {
  if (process.arch !== "x64" && process.arch !== "arm64") return undefined;
  for (const name of LIBRARY_NAMES) {
    try {
      return dlopen(name, symbols);
    } catch {
      // not under this name; try the next
    }
  }
  return undefined;
}

/** What the round trips at load check ISA-L with: about 110 KB of JSON-like rows, compressible as a database's pages are. */
export function roundTripText(): Uint8Array {
  return new TextEncoder().encode(Array.from({ length: 3000 }, (_, i) => `{"id":${i},"title":"row ${i * 7919 % 1000}"}\n`).join(""));
}
