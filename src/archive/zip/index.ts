/**
 * The format's face: writing zips as backups are written (`ZipStreamWriter`, deflating through the interface of
 * `block-deflater.ts`) and encrypting them (`winzip-aes.ts`), CRC-32, the format's numbers, entry path rules, zip.js's configuration and
 * sources, and checksum streams.
 * Depends on nothing else in src/archive; code outside src/archive/zip imports it from here.
 */
export * from "./archive-source.ts";
export * from "./block-deflater.ts";
export * from "./crc32.ts";
export * from "./entry-paths.ts";
export * from "./format.ts";
export * from "./lent-bytes.ts";
export * from "./ordered-output.ts";
export * from "./sha256-stream.ts";
export * from "./winzip-aes.ts";
export * from "./zip-config.ts";
export * from "./zip-stream-writer.ts";
export * from "./zlib-codec-streams.ts";
