/**
 * The manifest a backstream archive ends with: every entry's path, size and SHA-256 (and its deflate blocks), so
 * a restore or a verify can prove each entry is the one written. Its schema and parser: it is never trusted unparsed.
 */
import * as v from "valibot";

/** The manifest's path at the archive root. Restores never extract it into the data directory. */
export const MANIFEST_PATH = "backstream-manifest.json";
export const MANIFEST_FORMAT = 1;

const Sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));

const CountSchema = v.pipe(v.number(), v.integer(), v.minValue(0));

export const ManifestEntrySchema = v.object({
  path: v.pipe(v.string(), v.minLength(1)),
  size: CountSchema,
  sha256: Sha256Schema,
  /**
   * For an entry deflated in independent blocks (every large one we write): the input bytes per block and each
   * block's compressed size, so a restore can inflate them in parallel. Optional: other archives lack it.
   */
  deflateBlocks: v.optional(v.object({ blockSize: CountSchema, compressedSizes: v.array(CountSchema) })),
});

/** What a backstream archive says about itself; read back with `parseManifest`, never trusted unparsed. */
export const ManifestSchema = v.object({
  format: v.literal(MANIFEST_FORMAT),
  createdAt: v.string(),
  producer: v.string(),
  entries: v.array(ManifestEntrySchema),
});

export type Manifest = v.InferOutput<typeof ManifestSchema>;
export type ManifestEntry = v.InferOutput<typeof ManifestEntrySchema>;

/** Parses manifest JSON; returns a problem message instead of throwing. */
export function parseManifest(text: string): { manifest: Manifest } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: "The manifest is not valid JSON." };
  }
  const result = v.safeParse(ManifestSchema, json);
  if (!result.success) {
    const issue = result.issues[0];
    return { problem: `The manifest is malformed at ${v.getDotPath(issue) ?? "its root"}: ${issue.message}.` };
  }
  return { manifest: result.output };
}
