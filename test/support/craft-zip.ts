import { deflateRawSync } from "node:zlib";
import { crc32Portable } from "../../src/archive/zip/index.ts";

/** One entry of a hand-made zip; every field a hostile archive might lie about can be set. */
export interface CraftedEntry {
  name: string;
  data?: Uint8Array | string;
  /** 0 store (default) or 8 deflate. */
  method?: 0 | 8;
  /** Unix mode in the high 16 bits of the external attributes (e.g. 0o120777 for a symlink). */
  unixMode?: number;
  crc?: number;
  uncompressedSize?: number;
}

/**
 * Builds a zip byte by byte, with no library in the way, so tests can make archives that zip tools refuse
 * to write: `../` names, absolute paths, symlinks, wrong CRCs, lying sizes.
 */
export function craftZip(entries: CraftedEntry[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const raw = typeof entry.data === "string" ? Buffer.from(entry.data) : Buffer.from(entry.data ?? new Uint8Array());
    const method = entry.method ?? 0;
    const payload = method === 8 ? deflateRawSync(raw) : raw;
    const crc = entry.crc ?? crc32Portable(raw);
    const size = entry.uncompressedSize ?? raw.length;
    const name = Buffer.from(entry.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(payload.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, payload);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the mode bits are read
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(payload.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.unixMode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + payload.length;
  }
  const centralBytes = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, centralBytes, end]));
}

/** A tiny valid SQLite database file, for archives that need a real `data.db`. */
export async function tinyDatabase(): Promise<Uint8Array> {
  const { mkdtemp, readFile, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { createClient } = await import("@libsql/client");
  const dir = await mkdtemp(join(tmpdir(), "tinydb-"));
  try {
    const db = createClient({ url: `file:${join(dir, "data.db")}` });
    await db.execute("CREATE TABLE t (x)");
    await db.execute("INSERT INTO t VALUES (1)");
    db.close();
    return new Uint8Array(await readFile(join(dir, "data.db")));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
