/**
 * The archive core's face: writing, reading and verifying backup archives, their manifest and the rules every
 * reader applies. Its parts have faces of their own: the zip format (`zip/`), parallel deflate and inflate
 * (`engine/`), reusing an earlier archive's pieces (`reuse/`). Code outside src/archive imports these faces.
 */
export * from "./archive-checks.ts";
export * from "./archive-digest.ts";
export * from "./manifest.ts";
export * from "./read-archive.ts";
export * from "./verify-archive.ts";
export * from "./write-archive.ts";
/** The parts' types the face's own signatures use. */
export type { PieceDeflaterName } from "./engine/index.ts";
export { MAX_REUSABLE_PIECES } from "./reuse/index.ts";
export type { ReusablePieces, ReuseCounts } from "./reuse/index.ts";
export type { ArchiveSourceReader } from "./zip/index.ts";
