/**
 * Path rules for archive entries. An entry name must be a relative, `/`-separated path that stays inside
 * the data directory once extracted: no absolute paths, drive letters, backslashes, `..` or `.` segments,
 * empty segments or control characters.
 */
export function entryPathProblem(name: string): string | undefined {
  if (name.length === 0) return "An entry has an empty name.";
  if (name.length > 4096) return "An entry name is too long.";
  if (/[\x00-\x1f\x7f]/.test(name)) return `The entry name ${JSON.stringify(name)} holds control characters.`;
  if (name.includes("\\")) return `The entry ${JSON.stringify(name)} uses backslashes in its path.`;
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return `The entry ${JSON.stringify(name)} has an absolute path.`;
  const segments = name.split("/");
  if (segments.some((s) => s === "..")) return `The entry ${JSON.stringify(name)} escapes the data directory.`;
  if (segments.some((s) => s === "" || s === ".")) return `The entry ${JSON.stringify(name)} has an invalid path.`;
  return undefined;
}

/** File extensions whose content is already compressed: deflating them costs time and saves nothing. */
const INCOMPRESSIBLE = new Set([
  "jpg", "jpeg", "png", "gif", "webp", "avif", "heic", "mp4", "mov", "webm", "mkv", "mp3", "m4a", "ogg", "opus",
  "flac", "aac", "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "br", "woff", "woff2", "pdf", "docx", "xlsx",
  "pptx", "odt", "epub", "jar", "apk",
]);

/** Whether an entry is worth deflating, judged by its extension. */
export function isCompressible(path: string): boolean {
  const dot = path.lastIndexOf(".");
  return dot < 0 || !INCOMPRESSIBLE.has(path.slice(dot + 1).toLowerCase());
}
