/**
 * Whether tests must find ISA-L (`src/native/isal-deflate.ts`): CI installs it and sets this, so its tests fail
 * there rather than skip. Elsewhere they skip when the library is not installed, as the server then uses
 * libdeflate.
 */
export const isalRequired = process.env.BACKSTREAM_REQUIRE_ISAL === "1";
