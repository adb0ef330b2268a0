/**
 * The reuse cache's face: block indexes of an archive's deflated pieces, and an earlier archive's pieces found
 * by fingerprint and read back checked, so a next backup copies what did not change instead of deflating it.
 * Code outside src/archive/reuse imports it from here.
 */
export * from "./block-reuse.ts";
export * from "./piece-records.ts";
