import { createHash } from "node:crypto";
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader, ZipWriter, type FileEntry } from "@zip.js/zip.js";
import type { LocalBackupStore } from "../../src/store/local-backup-store.ts";

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Every file entry of a zip, in order, as path → bytes. */
export async function unzipAll(bytes: Uint8Array): Promise<Map<string, Uint8Array>> {
  const zip = new ZipReader(new Uint8ArrayReader(bytes), { useWebWorkers: false });
  const out = new Map<string, Uint8Array>();
  for (const entry of await zip.getEntries()) {
    if (!entry.directory) out.set(entry.filename, await (entry as FileEntry).getData(new Uint8ArrayWriter()));
  }
  await zip.close();
  return out;
}

/** Writes entries (in order) into a fresh zip. */
export async function zipAll(entries: Map<string, Uint8Array>): Promise<Uint8Array> {
  const writer = new Uint8ArrayWriter();
  const zip = new ZipWriter(writer, { useWebWorkers: false });
  for (const [path, data] of entries) await zip.add(path, new Uint8ArrayReader(data));
  return zip.close();
}

/** The zip rewritten by zip.js with the manifest's checksum of the entry `path` replaced by `sha256`. */
export async function withManifestChecksum(bytes: Uint8Array, path: string, sha256 = "0".repeat(64)): Promise<Uint8Array> {
  const entries = await unzipAll(bytes);
  const manifest = JSON.parse(new TextDecoder().decode(entries.get("backstream-manifest.json")));
  const listed = manifest.entries.find((entry: { path: string }) => entry.path === path);
  if (!listed) throw new Error(`The manifest does not list ${path}.`);
  listed.sha256 = sha256;
  entries.set("backstream-manifest.json", new TextEncoder().encode(JSON.stringify(manifest)));
  return zipAll(entries);
}

/** Puts bytes in a local store under `key`, with `sha256` as the checksum the store keeps (default: the bytes'). */
export async function storeBytes(store: LocalBackupStore, key: string, bytes: Uint8Array, sha256 = sha256Hex(bytes)): Promise<void> {
  const pending = await store.write(key);
  const writer = pending.stream.getWriter();
  await writer.write(bytes);
  await writer.close();
  await pending.commit(sha256);
}

/** The offset of the first data byte of `path` in a zip, found through its local header. */
export function entryDataOffset(zip: Uint8Array, path: string): number {
  const header = entryHeaderOffset(zip, path);
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  return header + 30 + view.getUint16(header + 26, true) + view.getUint16(header + 28, true);
}

/** Where the local header of the entry `path` starts. */
export function entryHeaderOffset(zip: Uint8Array, path: string): number {
  const name = new TextEncoder().encode(path);
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = 0; i + 30 < zip.length; i++) {
    if (view.getUint32(i, true) !== 0x04034b50) continue;
    if (view.getUint16(i + 26, true) === name.length && name.every((b, k) => zip[i + 30 + k] === b)) return i;
  }
  throw new Error(`no local header for ${path}`);
}
