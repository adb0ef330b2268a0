// File-system steps that make writes survive a crash, shared by the local store and the restore's swap:
// after a temp name, an fsync and a rename, the directory entry itself must reach the disk too.
import { open } from "node:fs/promises";

/** Makes a rename durable: the directory entry itself must reach the disk. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await handle.close();
  }
}
